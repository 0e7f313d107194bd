locals {
  prefix = "so-tagger-${var.environment}"
}

# Access logs of the two data buckets.
resource "google_storage_bucket" "logs" {
  # checkov:skip=CKV_GCP_62: this is the access-log bucket; logging it into itself would loop
  name                        = "${var.project_id}-${local.prefix}-logs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }
}

# The pipeline root: every component's artifacts, ML Metadata's URIs point here.
resource "google_storage_bucket" "pipeline_root" {
  name                        = "${var.project_id}-${local.prefix}-pipeline"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  logging {
    log_bucket = google_storage_bucket.logs.name
  }
  lifecycle_rule {
    condition {
      age = var.pipeline_artifacts_days
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}

# Served models: the Pusher writes <base>/tagger/<version>/, TF Serving polls it.
# Versioning keeps an overwritten or deleted version recoverable (rollback by copy).
resource "google_storage_bucket" "models" {
  name                        = "${var.project_id}-${local.prefix}-models"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  logging {
    log_bucket = google_storage_bucket.logs.name
  }
  lifecycle_rule {
    condition {
      num_newer_versions = var.model_noncurrent_versions
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
  lifecycle_rule {
    condition {
      age        = 30
      with_state = "ARCHIVED"
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }
}

resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption; a customer key adds a KMS dependency for images that hold no data
  repository_id = "so-tagger"
  location      = var.region
  format        = "DOCKER"
  description   = "Pipeline and app images (deploy/pipeline, deploy/app)."
  docker_config {
    immutable_tags = true
  }
  depends_on = [google_project_service.enabled]
}
