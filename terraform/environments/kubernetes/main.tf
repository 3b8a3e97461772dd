# The production shape: per point of presence a Deployment of edge workers with its Service,
# PodDisruptionBudget and HorizontalPodAutoscaler; one canary Deployment that takes each release
# first and is gated with `pz fleet gate`; the aggregator as a Deployment of consumer-group members.

locals {
  pop_names   = sort(keys(var.pops))
  canary_pop  = var.canary != "" ? var.canary : local.pop_names[0]
  waves       = [[for pop in local.pop_names : pop]] # every PoP rolls after the canary, wave_size pods at a time
  labels      = { "app.kubernetes.io/part-of" = "pz" }
  secret_key  = var.signing.algorithm == "ed25519" ? "public_key" : "secret"
  secret_var  = var.signing.algorithm == "ed25519" ? "PZ_SIGNING_PUBLIC_KEY" : "PZ_SIGNING_SECRET"
  signing_key = var.signing.algorithm == "ed25519" ? "private_key" : "secret"
  signing_var = var.signing.algorithm == "ed25519" ? "PZ_SIGNING_PRIVATE_KEY" : "PZ_SIGNING_SECRET"

  edge_env = merge(var.release.config, {
    PZ_EDGE_HOST       = "0.0.0.0"
    PZ_EDGE_PORT       = "8080"
    PZ_RELEASE         = var.release.version
    PZ_AGGREGATOR_URL  = "http://pz-aggregator.${var.namespace}.svc:8090"
    PZ_KAFKA_BOOTSTRAP = var.kafka_bootstrap
    PZ_PARTITIONS      = tostring(var.partitions)
    PZ_ORIGIN_URL      = var.origin_url
    PZ_SIGNING_ALG     = var.signing.algorithm
    PZ_SIGNING_KEY_ID  = var.signing.key_id
    PZ_EDGE_STATE_DIR  = "/var/lib/pz"
  })
  aggregator_env = {
    PZ_AGGREGATOR_HOST      = "0.0.0.0"
    PZ_AGGREGATOR_PORT      = "8090"
    PZ_KAFKA_BOOTSTRAP      = var.kafka_bootstrap
    PZ_REDIS_URL            = var.redis_url
    PZ_PARTITIONS           = tostring(var.partitions)
    PZ_SNAPSHOT_INTERVAL_S  = tostring(var.snapshot_interval_s)
    PZ_RULES_FILE           = var.rules_file == "" ? "" : "/etc/pz/rules/rules.yaml"
    PZ_SIGNING_ALG          = var.signing.algorithm
    PZ_SIGNING_KEY_ID       = var.signing.key_id
    PZ_AGGREGATOR_STATE_DIR = "/var/lib/pz"
  }
}

resource "kubernetes_namespace_v1" "pz" {
  metadata {
    name   = var.namespace
    labels = local.labels
  }
}

resource "kubernetes_config_map_v1" "edge" {
  metadata {
    name      = "pz-edge-${var.release.version}" # a new name per release: pods never see a half-changed config
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
    labels    = local.labels
  }
  data = local.edge_env
}

# The rules, as a file the aggregator watches: a changed ConfigMap reaches the pods' volume within
# the kubelet's sync period and the aggregator publishes it without a restart.
resource "kubernetes_config_map_v1" "rules" {
  metadata {
    name      = "pz-rules"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
    labels    = local.labels
  }
  data = { "rules.yaml" = var.rules_file == "" ? "" : file(var.rules_file) }
}

resource "kubernetes_config_map_v1" "aggregator" {
  metadata {
    name      = "pz-aggregator"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
    labels    = local.labels
  }
  data = local.aggregator_env
}

# --- aggregator --------------------------------------------------------------------------------

resource "kubernetes_deployment_v1" "aggregator" {
  metadata {
    name      = "pz-aggregator"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/name" = "pz-aggregator" })
  }
  spec {
    replicas = var.members
    selector {
      match_labels = { "app.kubernetes.io/name" = "pz-aggregator" }
    }
    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "0" # one member at a time: the group hands its partitions over with their state
        max_unavailable = "1"
      }
    }
    template {
      metadata {
        labels = merge(local.labels, { "app.kubernetes.io/name" = "pz-aggregator" })
      }
      spec {
        termination_grace_period_seconds = 30 # SIGTERM: commit what it has, leave the group
        container {
          name    = "aggregator"
          image   = var.image
          command = ["python", "-m", "aggregator"]
          env_from {
            config_map_ref {
              name = kubernetes_config_map_v1.aggregator.metadata[0].name
            }
          }
          env {
            name = local.signing_var
            value_from {
              secret_key_ref {
                name = var.signing.secret_name
                key  = local.signing_key
              }
            }
          }
          port {
            container_port = 8090
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = 8090
            }
            period_seconds = 5
          }
          liveness_probe {
            http_get {
              path = "/healthz"
              port = 8090
            }
            period_seconds = 10
          }
          volume_mount {
            name       = "state"
            mount_path = "/var/lib/pz"
          }
          volume_mount {
            name       = "rules"
            mount_path = "/etc/pz/rules"
            read_only  = true
          }
        }
        volume {
          name = "state"
          empty_dir {}
        }
        volume {
          name = "rules"
          config_map {
            name = kubernetes_config_map_v1.rules.metadata[0].name
          }
        }
      }
    }
  }
}

resource "kubernetes_service_v1" "aggregator" {
  metadata {
    name      = "pz-aggregator"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
  }
  spec {
    selector = { "app.kubernetes.io/name" = "pz-aggregator" }
    port {
      port        = 8090
      target_port = 8090
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "aggregator" {
  metadata {
    name      = "pz-aggregator"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
  }
  spec {
    max_unavailable = "1"
    selector {
      match_labels = { "app.kubernetes.io/name" = "pz-aggregator" }
    }
  }
}

# --- edges ------------------------------------------------------------------------------------

resource "kubernetes_deployment_v1" "canary" {
  metadata {
    name      = "edge-canary"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "canary" })
  }
  spec {
    replicas = 1
    selector {
      match_labels = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "canary" }
    }
    template {
      metadata {
        labels = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "canary", "pz.dev/pop" = local.canary_pop }
      }
      spec {
        node_selector = { "pz.dev/pop" = local.canary_pop }
        container {
          name    = "edge"
          image   = "${var.image}:${var.release.version}"
          command = ["python", "-m", "edge_worker"]
          env_from {
            config_map_ref {
              name = kubernetes_config_map_v1.edge.metadata[0].name
            }
          }
          env {
            name = local.secret_var
            value_from {
              secret_key_ref {
                name = var.signing.secret_name
                key  = local.secret_key
              }
            }
          }
          port {
            container_port = 8080
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = 8080
            }
            period_seconds = 2
          }
          liveness_probe {
            http_get {
              path = "/healthz"
              port = 8080
            }
            period_seconds = 10
          }
        }
      }
    }
  }
  wait_for_rollout = true
}

resource "kubernetes_service_v1" "canary" {
  metadata {
    name      = "edge-canary"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
  }
  spec {
    selector = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "canary" }
    port {
      port        = 80
      target_port = 8080
    }
  }
}

# The gate: the canary must serve the release well before any point of presence changes.
resource "terraform_data" "canary_gate" {
  depends_on       = [kubernetes_deployment_v1.canary]
  triggers_replace = { release = var.release, env = local.edge_env }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, [
      "fleet", "gate", "--release", var.release.version, "--rules-version", var.release.rules_version,
      "--timeout", tostring(var.gate.timeout_s),
    ])
    command = var.gate_url
  }
}

resource "kubernetes_deployment_v1" "edge" {
  for_each   = var.pops
  depends_on = [terraform_data.canary_gate]

  metadata {
    name      = "edge-${each.key}"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/name" = "pz-edge", "pz.dev/pop" = each.key })
  }
  spec {
    replicas = each.value.edges
    selector {
      match_labels = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "stable", "pz.dev/pop" = each.key }
    }
    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = tostring(var.wave_size)
        max_unavailable = "0"
      }
    }
    template {
      metadata {
        labels = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "stable", "pz.dev/pop" = each.key }
      }
      spec {
        node_selector = { "pz.dev/pop" = each.key }
        container {
          name    = "edge"
          image   = "${var.image}:${var.release.version}"
          command = ["python", "-m", "edge_worker"]
          env_from {
            config_map_ref {
              name = kubernetes_config_map_v1.edge.metadata[0].name
            }
          }
          env {
            name = local.secret_var
            value_from {
              secret_key_ref {
                name = var.signing.secret_name
                key  = local.secret_key
              }
            }
          }
          port {
            container_port = 8080
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = 8080
            }
            period_seconds = 2
          }
          liveness_probe {
            http_get {
              path = "/healthz"
              port = 8080
            }
            period_seconds = 10
          }
          resources {
            requests = { cpu = "500m", memory = "512Mi" }
          }
        }
      }
    }
  }
  wait_for_rollout = true
}

resource "kubernetes_service_v1" "edge" {
  for_each = var.pops
  metadata {
    name      = "edge-${each.key}"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
  }
  spec {
    # Stable and canary pods of the PoP alike: the canary takes its share of real traffic.
    selector = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/pop" = each.key }
    port {
      port        = 80
      target_port = 8080
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "edge" {
  for_each = var.pops
  metadata {
    name      = "edge-${each.key}"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
  }
  spec {
    max_unavailable = "1"
    selector {
      match_labels = { "app.kubernetes.io/name" = "pz-edge", "pz.dev/track" = "stable", "pz.dev/pop" = each.key }
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "edge" {
  for_each = var.pops
  metadata {
    name      = "edge-${each.key}"
    namespace = kubernetes_namespace_v1.pz.metadata[0].name
  }
  spec {
    min_replicas = each.value.edges
    max_replicas = each.value.edges * 4
    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.edge[each.key].metadata[0].name
    }
    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = 60
        }
      }
    }
  }
}
