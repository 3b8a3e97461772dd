output "edges" {
  description = "Every edge: point of presence and URL (open one in a browser: the demo shop behind it)."
  value       = module.edge_fleet.edges
}

output "canary" {
  value = module.edge_fleet.canary
}

output "waves" {
  value = module.edge_fleet.waves
}

output "release" {
  value = module.edge_fleet.release
}

output "aggregator" {
  value = module.aggregator.endpoints
}

output "shop" {
  value = "http://127.0.0.1:${var.ports.shop}"
}
