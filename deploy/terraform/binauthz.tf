# Binary Authorization: the cluster (gke.tf, PROJECT_SINGLETON_POLICY_ENFORCE) runs only
# images from this project's registry. TF Serving's official image is mirrored there by
# CD. Google's own system images stay admitted by the global policy.
resource "google_binary_authorization_policy" "cluster" {
  global_policy_evaluation_mode = "ENABLE"

  admission_whitelist_patterns {
    name_pattern = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/*"
  }

  default_admission_rule {
    evaluation_mode  = "ALWAYS_DENY"
    enforcement_mode = "ENFORCED_BLOCK_AND_AUDIT_LOG"
  }

  depends_on = [google_project_service.enabled]
}
