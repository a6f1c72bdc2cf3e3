package rules

import "unsafe"

// unsafeBytes views s as bytes for read-only use.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
