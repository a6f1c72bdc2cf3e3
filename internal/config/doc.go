// Package config holds the sensor's one Config: every setting, its default and
// its documentation live in the flag set that RegisterFlags builds. A YAML file
// (--config) may set any flag by its long name; flags given on the command
// line win over the file, and the file wins over the defaults.
package config
