# One service account per workload, each with only what it does.
resource "google_service_account" "pipeline" {
  account_id   = "so-tagger-pipeline"
  display_name = "Vertex AI pipeline runs and Dataflow workers"
}

resource "google_service_account" "worker" {
  account_id   = "so-tagger-worker"
  display_name = "The learning worker: feedback store, spans in the data bucket, Vertex AI jobs"
}

resource "google_service_account" "serving" {
  account_id   = "so-tagger-serving"
  display_name = "TF Serving: reads the models bucket"
}

resource "google_service_account" "app" {
  account_id   = "so-tagger-app"
  display_name = "The tagging app: Cloud SQL client, reads published model quality"
}

resource "google_service_account" "rollout" {
  account_id   = "so-tagger-rollout"
  display_name = "The rollout controller: writes the model config and rollout records"
}

resource "google_service_account" "ci" {
  account_id   = "so-tagger-ci"
  display_name = "GitHub Actions CI and pull requests: reads the data set, nothing else"
}

resource "google_service_account" "deploy" {
  account_id   = "so-tagger-deploy"
  display_name = "GitHub Actions CD of this environment: release workflows on v* tags only"
}

# --- the pipeline --------------------------------------------------------------------
resource "google_project_iam_member" "pipeline" {
  for_each = toset(["roles/aiplatform.user", "roles/dataflow.worker", "roles/logging.logWriter"])
  project  = var.project_id
  role     = each.value
  member   = google_service_account.pipeline.member
}

resource "google_storage_bucket_iam_member" "pipeline_root" {
  bucket = google_storage_bucket.pipeline_root.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.pipeline.member
}

resource "google_storage_bucket_iam_member" "pipeline_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.pipeline.member
}

resource "google_artifact_registry_repository_iam_member" "pipeline_pull" {
  repository = google_artifact_registry_repository.images.name
  location   = var.region
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.pipeline.member
}

# --- serving and the app -------------------------------------------------------------
resource "google_storage_bucket_iam_member" "serving_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.serving.member
}

resource "google_storage_bucket_iam_member" "app_models" {
  # The Evaluator metrics the Pusher publishes beside each model (the app's quality gauges).
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.app.member
}

# Grants limited to one prefix of a bucket (IAM conditions on object names).
locals {
  models        = google_storage_bucket.models.name
  data          = google_storage_bucket.pipeline_root.name
  prefix_grants = {
    # The sampled request log: new objects under requests/, never a change to a model.
    app_request_log = { bucket = local.models, member = google_service_account.app.member, role = "roles/storage.objectCreator", prefix = "requests/", list = false }
    # The rollout controller lists the pushed versions and replaces serving/models.config
    # and serving/tagger/rollout/*.
    rollout_models = { bucket = local.models, member = google_service_account.rollout.member, role = "roles/storage.objectUser", prefix = "serving/", list = true }
    # ... and reads the drift monitor's verdict, a promotion check.
    rollout_monitor = { bucket = local.models, member = google_service_account.rollout.member, role = "roles/storage.objectViewer", prefix = "monitoring/", list = false }
    # The learning worker writes each feedback span beside the base data, and withdraws
    # (copies, then deletes) a span whose retrain failed: spans/ of the data bucket.
    worker_spans = { bucket = local.data, member = google_service_account.worker.member, role = "roles/storage.objectUser", prefix = "spans/", list = true }
    # ... and reads the quality file the Pusher publishes beside each version.
    worker_quality = { bucket = local.models, member = google_service_account.worker.member, role = "roles/storage.objectViewer", prefix = "serving/tagger/quality/", list = false }
  }
}

moved {
  from = google_storage_bucket_iam_member.models_prefix
  to   = google_storage_bucket_iam_member.prefix
}

resource "google_storage_bucket_iam_member" "prefix" {
  for_each = local.prefix_grants
  bucket   = each.value.bucket
  role     = each.value.role
  member   = each.value.member
  condition {
    title = "${each.key}-${replace(trimsuffix(each.value.prefix, "/"), "/", "-")}-only"
    # Listing is asked of the bucket itself, which no object prefix matches.
    expression = join(" || ", concat(
      ["resource.name.startsWith(\"projects/_/buckets/${each.value.bucket}/objects/${each.value.prefix}\")"],
      each.value.list ? ["resource.name == \"projects/_/buckets/${each.value.bucket}\""] : [],
    ))
  }
}

# --- the rollout controller ----------------------------------------------------------
resource "google_project_iam_member" "rollout_sql" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.rollout.member
}

resource "google_project_iam_member" "app_sql" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.app.member
}

# --- the learning worker: it claims feedback, writes spans, submits and follows jobs ----
resource "google_project_iam_member" "worker" {
  # The feedback store; PipelineJobs submitted and read (the pipeline does the rest).
  for_each = toset(["roles/cloudsql.client", "roles/aiplatform.user"])
  project  = var.project_id
  role     = each.value
  member   = google_service_account.worker.member
}

resource "google_service_account_iam_member" "worker_acts_as_pipeline" {
  # The worker's jobs run as the pipeline account, as CD's do.
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.worker.member
}

# Workload Identity: Kubernetes service accounts of the chart act as these accounts.
locals {
  workload_identity = {
    serving = { account = google_service_account.serving.name, ksa = "tf-serving" }
    app     = { account = google_service_account.app.name, ksa = "so-tagger-app" }
    worker  = { account = google_service_account.worker.name, ksa = "so-tagger-worker" }
    rollout = { account = google_service_account.rollout.name, ksa = "so-tagger-rollout" }
  }
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = local.workload_identity
  service_account_id = each.value.account
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.kubernetes_namespace}/${each.value.ksa}]"
  depends_on         = [google_container_cluster.autopilot]
}

# --- CI/CD: GitHub Actions, no JSON keys ----------------------------------------------
# Two pools, so that no token can reach the other's identity: a principalSet names a pool,
# and a CI token's attributes never come from the deploy pool's provider.
locals {
  github_issuer = "https://token.actions.githubusercontent.com"
  # The release workflows whose jobs may deploy here: cd.yml builds and pushes the images
  # (in the test environment), deploy.yml installs the release (in each environment).
  deploy_workflows = var.environment == "test" ? ["cd.yml", "deploy.yml"] : ["deploy.yml"]
  deploy_condition = join(" && ", [
    "assertion.repository == \"${var.github_repository}\"",
    "assertion.environment == \"${var.environment}\"",
    "assertion.ref.startsWith(\"refs/tags/v\")",
    "assertion.ref_type == \"tag\"",
    "(${join(" || ", [for w in local.deploy_workflows :
    "assertion.job_workflow_ref.startsWith(\"${var.github_repository}/.github/workflows/${w}@refs/tags/v\")"])})",
  ])
}

resource "google_iam_workload_identity_pool" "github_ci" {
  workload_identity_pool_id = "github-ci"
  display_name              = "GitHub Actions CI"
  depends_on                = [google_project_service.enabled]
}

resource "google_iam_workload_identity_pool_provider" "github_ci" {
  # checkov:skip=CKV_GCP_125: the condition pins one repository (var.github_repository); checkov cannot resolve the variable
  workload_identity_pool_id          = google_iam_workload_identity_pool.github_ci.workload_identity_pool_id
  workload_identity_pool_provider_id = "github"
  display_name                       = "GitHub OIDC, any workflow"
  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
  }
  # Any workflow of this repository: pull requests included, which is why the identity
  # behind it can only read the data set.
  attribute_condition = "assertion.repository == \"${var.github_repository}\""
  oidc {
    issuer_uri = local.github_issuer
  }
}

resource "google_service_account_iam_member" "ci_federation" {
  service_account_id = google_service_account.ci.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github_ci.name}/attribute.repository/${var.github_repository}"
}

resource "google_storage_bucket_iam_member" "ci_reads_the_data" {
  # The data set under data/ of the pipeline bucket, which the tests copy to ../shared.
  bucket = google_storage_bucket.pipeline_root.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.ci.member
  condition {
    title      = "data-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.pipeline_root.name}/objects/data/\")"
  }
}

resource "google_iam_workload_identity_pool" "github_deploy" {
  workload_identity_pool_id = "github-deploy"
  display_name              = "GitHub Actions releases"
  depends_on                = [google_project_service.enabled]
}

resource "google_iam_workload_identity_pool_provider" "github_deploy" {
  # checkov:skip=CKV_GCP_125: the condition pins one repository (var.github_repository); checkov cannot resolve the variable
  workload_identity_pool_id          = google_iam_workload_identity_pool.github_deploy.workload_identity_pool_id
  workload_identity_pool_provider_id = "github"
  display_name                       = "GitHub OIDC, release workflows"
  attribute_mapping = {
    "google.subject"         = "assertion.sub"
    "attribute.repository"   = "assertion.repository"
    "attribute.environment"  = "assertion.environment"
    "attribute.workflow_ref" = "assertion.job_workflow_ref"
  }
  # Google refuses every other token: another branch, a pull request, another workflow,
  # or a job outside this environment (whose reviewers approve prod releases).
  attribute_condition = local.deploy_condition
  oidc {
    issuer_uri = local.github_issuer
  }
}

resource "google_service_account_iam_member" "deploy_federation" {
  service_account_id = google_service_account.deploy.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github_deploy.name}/attribute.environment/${var.environment}"
}

resource "google_artifact_registry_repository_iam_member" "deploy_push" {
  repository = google_artifact_registry_repository.images.name
  location   = var.region
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.deploy.member
}

resource "google_project_iam_member" "deploy" {
  # Submit pipeline runs and deploy the chart to the cluster.
  for_each = toset(["roles/aiplatform.user", "roles/container.developer"])
  project  = var.project_id
  role     = each.value
  member   = google_service_account.deploy.member
}

resource "google_storage_bucket_iam_member" "deploy_pipeline_root" {
  # The compiled pipeline spec and the run's inputs are uploaded here.
  bucket = google_storage_bucket.pipeline_root.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deploy.member
}

resource "google_service_account_iam_member" "deploy_acts_as_pipeline" {
  # Vertex runs the submitted pipeline as the pipeline account, not as the deployer.
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deploy.member
}
