variable "project_id" {
  description = "The Google Cloud project of this environment."
  type        = string
}

variable "environment" {
  description = "test or prod: part of every resource name."
  type        = string
  validation {
    condition     = contains(["test", "prod"], var.environment)
    error_message = "environment is test or prod."
  }
}

variable "region" {
  description = "Region of the buckets, the registry, Vertex AI, the cluster and Cloud SQL."
  type        = string
  default     = "europe-west4"
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may deploy here."
  type        = string
}

variable "iap_members" {
  description = "Who may pass Identity-Aware Proxy to reach the app (IAM members)."
  type        = list(string)
  default     = ["allAuthenticatedUsers"]
}

variable "kubernetes_namespace" {
  description = "Namespace the Helm release is installed in (Workload Identity bindings)."
  type        = string
  default     = "so-tagger"
}

variable "sql_tier" {
  description = "Cloud SQL machine tier of the feedback store."
  type        = string
  default     = "db-custom-1-3840"
}

variable "sql_high_availability" {
  description = "A regional (failover) Cloud SQL instance instead of a zonal one."
  type        = bool
  default     = false
}

variable "pipeline_artifacts_days" {
  description = "Days pipeline-root objects (intermediate artifacts) are kept."
  type        = number
  default     = 90
}

variable "model_noncurrent_versions" {
  description = "Overwritten or deleted model objects kept as noncurrent versions."
  type        = number
  default     = 5
}

variable "deletion_protection" {
  description = "Protect the cluster and the database from terraform destroy."
  type        = bool
  default     = true
}
