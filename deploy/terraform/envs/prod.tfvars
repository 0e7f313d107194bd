project_id            = "so-tagger-prod"
environment           = "prod"
region                = "europe-west4"
github_repository     = "so-tagger/so-tagger"
sql_tier              = "db-custom-2-7680"
sql_high_availability = true
deletion_protection   = true
