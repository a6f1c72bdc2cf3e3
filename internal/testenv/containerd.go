package testenv

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteContainerdConfig writes dir/config.toml for a private containerd:
// its own root, state and socket under dir, with CRI, debug and metrics
// off. It returns the config path and the socket.
func WriteContainerdConfig(dir string) (config, socket string, err error) {
	config, socket = filepath.Join(dir, "config.toml"), filepath.Join(dir, "ctd.sock")
	text := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), socket, socket+".ttrpc")
	return config, socket, os.WriteFile(config, []byte(text), 0o600)
}
