# Plans only: the rollout itself is applied by tests/test_terraform.py against real processes.

variables {
  name       = "edge"
  pops       = { eu = { edges = 3, base_port = 20000 }, us = { edges = 2, base_port = 21000 } }
  release    = { version = "v7", rules_version = "r3", config = { PZ_PROFILE_CACHE_SIZE = "5000" } }
  wave_size  = 2
  sync       = { aggregator_url = "http://127.0.0.1:8090", kafka_bootstrap = "127.0.0.1:9092" }
  signing    = { key_id = "k1", secret_env = "PZ_TEST_SECRET" }
  state_dir  = "/tmp/pz-tftest"
  pz_command = ["pz"]
}

run "canary_first_then_waves_of_the_given_size" {
  command = plan

  assert {
    condition     = output.canary == "edge-eu-0"
    error_message = "the canary defaults to the first edge of the first point of presence"
  }
  assert {
    condition     = output.waves == [["edge-eu-1", "edge-eu-2"], ["edge-us-0", "edge-us-1"]]
    error_message = "waves must cover every other edge, in order, wave_size at a time"
  }
  assert {
    condition     = output.edges["edge-us-1"].url == "http://127.0.0.1:21001"
    error_message = "edge ports count up from the point of presence's base_port"
  }
  assert {
    condition     = terraform_data.canary.input.waves == [[{ name = "edge-eu-0", port = 20000 }]]
    error_message = "the canary step rolls out to the canary alone"
  }
}

run "a_named_canary_leaves_the_others_to_the_waves" {
  command = plan
  variables {
    canary    = "edge-us-1"
    wave_size = 3
  }
  assert {
    condition     = output.canary == "edge-us-1"
    error_message = "the canary variable names the canary"
  }
  assert {
    condition     = output.waves == [["edge-eu-0", "edge-eu-1", "edge-eu-2"], ["edge-us-0"]]
    error_message = "the named canary is not in any wave"
  }
}

run "the_secret_stays_a_reference" {
  command = plan
  assert {
    condition     = jsonencode(local.secret_env) == jsonencode({ PZ_SIGNING_SECRET = "PZ_TEST_SECRET" })
    error_message = "an HMAC secret is passed by the name of the variable holding it"
  }
  assert {
    condition     = !contains(keys(local.env), "PZ_SIGNING_SECRET")
    error_message = "the secret itself never enters the plan"
  }
}

run "unknown_canary_is_refused" {
  command = plan
  variables {
    canary = "edge-asia-0"
  }
  expect_failures = [terraform_data.canary]
}

run "bad_release_version_is_refused" {
  command = plan
  variables {
    release = { version = "v 1; rm -rf" }
  }
  expect_failures = [var.release]
}

run "release_config_cannot_smuggle_a_signing_secret" {
  command = plan
  variables {
    release = { version = "v8", config = { PZ_SIGNING_SECRET = "oops" } }
  }
  expect_failures = [var.release]
}

run "empty_point_of_presence_is_refused" {
  command = plan
  variables {
    pops = { eu = { edges = 0 } }
  }
  expect_failures = [var.pops]
}

run "kafka_transport_needs_a_bootstrap" {
  command = plan
  variables {
    sync = { aggregator_url = "http://127.0.0.1:8090", transport = "kafka" }
  }
  expect_failures = [var.sync]
}

run "ed25519_needs_the_public_key" {
  command = plan
  variables {
    signing = { algorithm = "ed25519", key_id = "k2" }
  }
  expect_failures = [var.signing]
}

run "zero_wave_size_is_refused" {
  command = plan
  variables {
    wave_size = 0
  }
  expect_failures = [var.wave_size]
}
