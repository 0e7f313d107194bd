# Identity-Aware Proxy in front of the app's Ingress (the chart's BackendConfig turns it
# on, with Google's managed OAuth client). Who may pass the proxy at all: var.iap_members
# (by default anyone signed in to a Google account, the "anyone" role). Which of them
# review or operate is the app's role map (chart value app.iap.roles), read from the
# signed header IAP adds; the app refuses requests that lack it.
resource "google_iap_web_iam_member" "app_users" {
  for_each   = toset(var.iap_members)
  project    = var.project_id
  role       = "roles/iap.httpsResourceAccessor"
  member     = each.value
  depends_on = [google_project_service.enabled]
}

# TLS 1.2 or newer with modern ciphers, for the Ingress's HTTPS listener (the chart's
# FrontendConfig names it; plain HTTP only redirects).
resource "google_compute_ssl_policy" "app" {
  name            = "so-tagger-${var.environment}"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
  depends_on      = [google_project_service.enabled]
}
