// Package broker runs the embedded NATS server (nats-server/v2 in process,
// JetStream enabled, file store under <data dir>/jetstream) that the sensor
// publishes to when no external NATS URL is configured.
//
// Contract: New validates the Config and builds the server without starting
// it; Start starts it and returns once it accepts clients (Ready is closed
// then); Run starts it, serves until ctx ends and shuts it down; Close is
// idempotent. The server installs no signal handlers and does not log.
package broker
