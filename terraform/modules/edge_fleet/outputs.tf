output "edges" {
  description = "Every edge: point of presence and URL."
  value       = { for e in local.edges : e.name => { pop = e.pop, url = "http://127.0.0.1:${e.port}" } }
}

output "canary" {
  description = "The edge that takes each release first."
  value       = local.canary_name
}

output "waves" {
  description = "The rollout order after the canary: one list of edge names per wave."
  value       = [for wave in local.waves : [for e in wave : e.name]]
}

output "release" {
  description = "The release this configuration rolls out."
  value       = var.release.version
}

output "rules_version" {
  description = "The rules version every edge must serve after the rollout."
  value       = var.release.rules_version
}
