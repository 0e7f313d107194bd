"""create_pipeline(): the whole TFX pipeline, with every environment-specific value an argument.

Runners (local_runner.py, vertex_runner.py) own configuration; nothing here knows whether
it runs on this machine or on Vertex AI.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2, range_config_pb2, transform_pb2

from ingest.spans import SPAN_PATTERN
from pipeline.anomalies_gate import AnomaliesGate
from pipeline.atomic_pusher import AtomicPusher
from pipeline.eval_config import make_eval_config
from pipeline.span_example_gen import SpanExampleGen
from pipeline.validated_spans import ValidatedSpansStrategy

# Hash buckets: train fits the model, eval early-stops it and picks its decision
# threshold, test is what the Evaluator (and the quality bench) score: data never seen.
SPLITS = (("train", 16), ("eval", 2), ("test", 2))
EVAL_SPLIT = "test"


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    spans_dir: str,
    schema_path: str,
    transform_module_file: str,
    trainer_module_file: str,
    serving_model_dir: str,
    train_steps: int | None,
    eval_steps: int | None,
    blessing_floors: dict[str, float],
    blessing_tolerance: float,
    span: int | None = None,
    train_spans: tuple[int, int] | None = None,
    trainer_config: dict | None = None,
    metadata_connection_config=None,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """The tagger pipeline.

    span: which data span ExampleGen ingests and validates; None takes the latest one.
    train_spans: (first, last) span numbers, inclusive, that Transform, Trainer and
      Evaluator read, among those that passed validation; None reads all of them.
    transform_module_file / trainer_module_file: paths of the TFX module files. TFX packages
      their directory into a wheel whose hash is part of the cache key, so editing any
      module file reruns Transform and Trainer (an import path would be cached stale).
    blessing_floors / blessing_tolerance: see pipeline/eval_config.py.
    """
    range_config = None
    if span is not None:
        range_config = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)
        )
    example_gen = SpanExampleGen(
        input_base=spans_dir,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="all", pattern=SPAN_PATTERN)]
        ),
        output_config=example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in SPLITS
                ],
                # Split on the hash of the whole example. (Partitioning on the title would
                # keep duplicate titles together, but ExampleGen then crashes on a span
                # with a missing title before ExampleValidator can name the problem.)
            )
        ),
        range_config=range_config,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    # Inferred schema: not used downstream, kept so people can diff it against the curated one.
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False
    )
    curated_schema = tfx.components.ImportSchemaGen(schema_file=schema_path)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=curated_schema.outputs["schema"],
    )
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])

    first, last = train_spans if train_spans is not None else (0, 2**31 - 1)
    training_spans = tfx.dsl.Resolver(
        strategy_class=ValidatedSpansStrategy,
        config={"start_span": first, "end_span": last},
        examples=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.Examples,
            producer_component_id=example_gen.id,
            output_key="examples",
        ),
    ).with_id("training_spans_resolver")
    # The span ingested by this run must be judged before the resolver looks for it.
    training_spans.add_upstream_node(anomalies_gate)

    transform = tfx.components.Transform(
        examples=training_spans.outputs["examples"],
        schema=curated_schema.outputs["schema"],
        module_file=transform_module_file,
        splits_config=transform_pb2.SplitsConfig(
            analyze=["train"], transform=[name for name, _ in SPLITS]
        ),
    )

    trainer = tfx.components.Trainer(
        module_file=trainer_module_file,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=curated_schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=eval_steps),
        custom_config=trainer_config or {},
    )

    latest_blessed = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    evaluator = tfx.components.Evaluator(
        examples=training_spans.outputs["examples"],
        example_splits=[EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=latest_blessed.outputs["model"],
        eval_config=make_eval_config(blessing_floors, blessing_tolerance),
    )

    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            curated_schema,
            example_validator,
            anomalies_gate,
            training_spans,
            transform,
            trainer,
            latest_blessed,
            evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
