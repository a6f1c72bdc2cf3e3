// Package deploy holds the deployment artefacts of Tripline and their tests:
// the Kubernetes manifests under kubernetes/ (privileged DaemonSet, a
// least-privilege variant and an example NATS JetStream cluster), and tests
// that decode every manifest strictly into the Kubernetes API types, check
// the Dockerfile, the Vagrant provisioning script, and run the real sensor
// with the least-privilege capability set. It contains no library code.
package deploy
