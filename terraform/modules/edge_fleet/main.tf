locals {
  state_dir = abspath(var.state_dir)

  # Every edge, in a stable order: points of presence by name, then index.
  edges = flatten([
    for pop in sort(keys(var.pops)) : [
      for i in range(var.pops[pop].edges) : {
        name = "${var.name}-${pop}-${i}"
        pop  = pop
        port = var.pops[pop].base_port + i
      }
    ]
  ])
  canary_name = var.canary != "" ? var.canary : local.edges[0].name
  canary      = [for e in local.edges : { name = e.name, port = e.port } if e.name == local.canary_name]
  rest        = [for e in local.edges : { name = e.name, port = e.port } if e.name != local.canary_name]
  waves       = chunklist(local.rest, var.wave_size)

  sync_env = {
    PZ_AGGREGATOR_URL  = var.sync.aggregator_url
    PZ_DELTA_TRANSPORT = var.sync.transport
    PZ_KAFKA_BOOTSTRAP = var.sync.kafka_bootstrap
    PZ_PARTITIONS      = tostring(var.sync.partitions)
    PZ_ORIGIN_URL      = var.origin_url
    PZ_SIGNING_ALG     = var.signing.algorithm
    PZ_SIGNING_KEY_ID  = var.signing.key_id
  }
  env = merge(
    local.sync_env,
    var.signing.algorithm == "ed25519" ? { PZ_SIGNING_PUBLIC_KEY = var.signing.public_key } : {},
  )
  secret_env = var.signing.algorithm == "hmac-sha256" && var.signing.secret_env != "" ? { PZ_SIGNING_SECRET = var.signing.secret_env } : {}

  rollout = {
    state_dir  = local.state_dir
    release    = var.release
    env        = local.env
    secret_env = local.secret_env
    gate       = var.gate
  }
}

# One per edge: membership. Destroying one (scale down, `terraform destroy`) stops that edge.
resource "terraform_data" "edge" {
  for_each = { for e in local.edges : e.name => e }
  input = {
    name       = each.key
    pop        = each.value.pop
    port       = each.value.port
    state_dir  = local.state_dir
    pz_command = var.pz_command
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = concat(self.input.pz_command, ["fleet", "stop", "--state-dir", self.input.state_dir])
    command     = self.input.name
  }
}

# The canary takes the release first and must pass its gate; on failure it is rolled back to its
# last good release and the apply stops here, before any other edge is touched.
resource "terraform_data" "canary" {
  depends_on       = [terraform_data.edge]
  triggers_replace = { release = var.release, env = local.env, edges = local.canary }
  input            = { waves = [local.canary] }

  lifecycle {
    precondition {
      condition     = length(local.canary) == 1
      error_message = "canary ${jsonencode(var.canary)} is not an edge of this fleet (edges: ${join(", ", [for e in local.edges : e.name])})."
    }
  }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "rollout", "--spec"])
    command     = jsonencode(merge(local.rollout, { step = "canary", waves = [local.canary] }))
  }
}

# Then the other edges, wave by wave, each wave gated; a failed gate rolls back every edge this
# step changed and stops the apply.
resource "terraform_data" "waves" {
  depends_on       = [terraform_data.canary]
  triggers_replace = { release = var.release, env = local.env, waves = local.waves }
  input            = { waves = local.waves }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "rollout", "--spec"])
    command     = jsonencode(merge(local.rollout, { step = "waves", waves = local.waves }))
  }
}
