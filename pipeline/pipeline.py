"""create_pipeline(): the whole TFX pipeline, with every environment-specific value an argument.

Runners (local_runner.py, vertex_runner.py) own configuration; nothing here knows whether
it runs on this machine or on Vertex AI. Every construct used compiles for Vertex AI
Pipelines (KubeflowV2DagRunner): no resolver walks ML Metadata in Python.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2, transform_pb2

from pipeline.anomalies_gate import AnomaliesGate
from pipeline.atomic_pusher import AtomicPusher
from pipeline.eval_config import make_eval_config
from pipeline.span_example_gen import LAST, SpanExampleGen

# Hash buckets: train fits the model, eval early-stops it and picks its decision
# threshold, test is what the Evaluator (and the quality bench) score: data never seen.
SPLITS = (("train", 16), ("eval", 2), ("test", 2))
EVAL_SPLIT = "test"
# Custom-config key carrying the fingerprint of the module code (see code_version below).
CODE_VERSION_KEY = "code_version"


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    spans_dir: str,
    schema_path: str,
    hyperparameters_dir: str,
    preprocessing_fn: str,
    run_fn: str,
    tuner_fn: str,
    code_version: str,
    reviewed_files_version: dict[str, str],
    serving_model_dir: str,
    train_steps: int | None,
    eval_steps: int | None,
    blessing_floors: dict[str, float],
    blessing_tolerance: float,
    train_spans: tuple[int, int] | None = None,
    warm_start: bool = False,
    tuning: dict | None = None,
    trainer_config: dict | None = None,
    vertex_training: dict | None = None,
    metadata_connection_config=None,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """The tagger pipeline.

    spans_dir: where the data spans are (a directory or a gs:// prefix).
    train_spans: (first, last) span numbers, inclusive, that the run reads, validates and
      trains on; None reads every span present.
    hyperparameters_dir: the reviewed directory holding best_hyperparameters.txt, the
      last tuning's result, which the Trainer uses when the run does not tune.
    preprocessing_fn / run_fn / tuner_fn: import paths of the module code, installed as
      a package.
    code_version: a fingerprint of that code. Import paths alone do not change when the
      code does, so it goes into Transform's and Trainer's custom config, which is part of
      their cache key: edited module code reruns them, unchanged code stays cached.
    reviewed_files_version: {"schema": ..., "hyperparameters": ...} fingerprints of the
      reviewed files' contents, for the same reason: their importers reuse an artifact
      by path, so an edited file alone would leave Transform and Trainer cached.
    tuning: when set ({"max_trials": N}), the Tuner searches the network's
      hyperparameters (modules/tuner.py) and its best values feed the Trainer.
    vertex_training: when set, the Trainer runs as a Vertex AI custom job with these
      settings: {"project", "region", "worker_pool_specs"} (see vertex_runner.py).
    warm_start: the Trainer starts from the latest blessed model's weights (its base_model
      input; modules/warm_start.py) and trains a few epochs instead of many. The first run,
      with nothing blessed yet, trains from scratch either way.
    blessing_floors / blessing_tolerance: see pipeline/eval_config.py.
    """
    first, last = train_spans if train_spans is not None else (0, LAST)
    example_gen = SpanExampleGen(
        spans_dir=spans_dir,
        first_span=first,
        last_span=last,
        feedback_split=SPLITS[0][0],  # training only: feedback never enters eval or test
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
    anomalies_gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
    )

    code = {CODE_VERSION_KEY: code_version}
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=curated_schema.outputs["schema"],
        preprocessing_fn=preprocessing_fn,
        custom_config={**code, "schema_version": reviewed_files_version["schema"]},
        splits_config=transform_pb2.SplitsConfig(
            analyze=["train"], transform=[name for name, _ in SPLITS]
        ),
        # StatisticsGen has described the examples already, and nothing reads statistics
        # of the transformed ones. The analyzer cache is keyed by the input files' path,
        # and each run's examples (every span) are written under a new one: it never hits.
        disable_statistics=True,
        disable_analyzer_cache=True,
    )
    # Nothing reads the spans' examples before the gate has passed them.
    transform.add_upstream_node(anomalies_gate)

    latest_blessed = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    data = dict(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=curated_schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=eval_steps),
    )
    reviewed = dict(reviewed_files_version)
    if tuning is not None:
        tuner = tfx.components.Tuner(
            **data, tuner_fn=tuner_fn, custom_config={**(trainer_config or {}), **tuning, **code}
        )
        hyperparameters = tuner.outputs["best_hyperparameters"]
        del reviewed["hyperparameters"]  # not read: the Tuner's result is
    else:
        tuner = tfx.dsl.Importer(
            source_uri=hyperparameters_dir,
            artifact_type=tfx.types.standard_artifacts.HyperParameters,
        ).with_id("tuned_hyperparameters")
        hyperparameters = tuner.outputs["result"]
    trainer_args = dict(**data, run_fn=run_fn, hyperparameters=hyperparameters)
    if warm_start:
        trainer_args["base_model"] = latest_blessed.outputs["model"]
    training = {**(trainer_config or {}), "warm_start": warm_start, **code, **reviewed}
    if vertex_training is None:
        trainer = tfx.components.Trainer(**trainer_args, custom_config=training)
    else:
        vertex = tfx.extensions.google_cloud_ai_platform
        trainer = vertex.Trainer(
            **trainer_args,
            custom_config={
                **training,
                vertex.ENABLE_VERTEX_KEY: True,
                vertex.VERTEX_REGION_KEY: vertex_training["region"],
                vertex.TRAINING_ARGS_KEY: {
                    "project": vertex_training["project"],
                    "worker_pool_specs": vertex_training["worker_pool_specs"],
                },
            },
        )

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=latest_blessed.outputs["model"],
        eval_config=make_eval_config(blessing_floors, blessing_tolerance),
    )

    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        model_evaluation=evaluator.outputs["evaluation"],
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
            transform,
            tuner,
            latest_blessed,
            trainer,
            evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
