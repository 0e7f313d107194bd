# The services the system uses; disabling them on destroy would break other users of
# the project, so they stay on.
locals {
  services = [
    "aiplatform.googleapis.com",        # Vertex AI Pipelines and training
    "dataflow.googleapis.com",          # Beam components at scale
    "container.googleapis.com",         # GKE
    "artifactregistry.googleapis.com",  # images
    "sqladmin.googleapis.com",          # Cloud SQL
    "servicenetworking.googleapis.com", # Cloud SQL private IP
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # Workload Identity Federation tokens
    "sts.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "binaryauthorization.googleapis.com", # only the registry's images run (binauthz.tf)
    "iap.googleapis.com",                 # Identity-Aware Proxy in front of the app (iap.tf)
  ]
}

resource "google_project_service" "enabled" {
  for_each           = toset(local.services)
  service            = each.value
  disable_on_destroy = false
}
