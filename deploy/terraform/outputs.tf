output "artifact_registry" {
  description = "Image registry: REGISTRY/pipeline and REGISTRY/app."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "pipeline_root" {
  value = "gs://${google_storage_bucket.pipeline_root.name}"
}

output "models_base_path" {
  description = "TF Serving's model base path (chart value serving.modelBasePath)."
  value       = "gs://${google_storage_bucket.models.name}/serving/tagger"
}

output "ssl_policy" {
  description = "The chart's app.ingress.sslPolicy."
  value       = google_compute_ssl_policy.app.name
}

output "cluster" {
  value = google_container_cluster.autopilot.name
}

output "pipeline_service_account" {
  value = google_service_account.pipeline.email
}

output "ci_service_account" {
  value = google_service_account.ci.email
}

output "ci_workload_identity_provider" {
  description = "CI's workload_identity_provider (GitHub variable GCP_CI_WORKLOAD_IDENTITY_PROVIDER)."
  value       = google_iam_workload_identity_pool_provider.github_ci.name
}

output "deploy_service_account" {
  value = google_service_account.deploy.email
}

output "deploy_workload_identity_provider" {
  description = "CD's workload_identity_provider (GCP_DEPLOY_WORKLOAD_IDENTITY_PROVIDER)."
  value       = google_iam_workload_identity_pool_provider.github_deploy.name
}

output "feedback_database_url" {
  description = "The app's and worker's TAGGER_FEEDBACK_URL (goes into the cluster Secret)."
  value       = "postgresql://${google_sql_user.tagger.name}:${random_password.sql.result}@${google_sql_database_instance.feedback.private_ip_address}:5432/${google_sql_database.feedback.name}?sslmode=require"
  sensitive   = true
}
