project_id            = "so-tagger-test"
environment           = "test"
region                = "europe-west4"
github_repository     = "so-tagger/so-tagger"
sql_tier              = "db-g1-small"
sql_high_availability = false
deletion_protection   = false
