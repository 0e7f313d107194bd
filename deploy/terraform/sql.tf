# The feedback store: PostgreSQL on a private address, reached by the app and the worker.
resource "google_sql_database_instance" "feedback" {
  # checkov:skip=CKV_GCP_79: 17 is what the tests and the local stack run (Debian trixie's PostgreSQL); move all three together
  # checkov:skip=CKV_GCP_6: ENCRYPTED_ONLY requires TLS on every connection; client certificates are not used (private IP only)
  name                = "so-tagger-${var.environment}"
  database_version    = "POSTGRES_17"
  region              = var.region
  deletion_protection = var.deletion_protection

  settings {
    tier              = var.sql_tier
    availability_type = var.sql_high_availability ? "REGIONAL" : "ZONAL"
    disk_autoresize   = true
    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.vpc.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }
    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }
  depends_on = [google_service_networking_connection.sql]
}

resource "google_sql_database" "feedback" {
  name     = "feedback"
  instance = google_sql_database_instance.feedback.name
}

# The password is generated here and kept in the (GCS, access-controlled) state; the
# feedback URL built from it goes into the cluster's Secret (README: Deploy).
resource "google_sql_user" "tagger" {
  name     = "tagger"
  instance = google_sql_database_instance.feedback.name
  password = random_password.sql.result
}

resource "random_password" "sql" {
  length  = 32
  special = false
}
