output "edges" {
  description = "Every point of presence: its Service inside the cluster."
  value       = { for pop in local.pop_names : pop => { pop = pop, url = "http://edge-${pop}.${var.namespace}.svc" } }
}

output "canary" {
  description = "The point of presence whose canary takes each release first."
  value       = local.canary_pop
}

output "waves" {
  description = "After the canary: every point of presence, each rolling wave_size pods at a time."
  value       = local.waves
}

output "release" {
  value = var.release.version
}

output "rules_version" {
  value = var.release.rules_version
}

output "endpoints" {
  description = "The aggregator Service."
  value       = ["http://pz-aggregator.${var.namespace}.svc:8090"]
}

output "partitions" {
  value = var.partitions
}
