package capture

import "errors"

// compatHelper: AArch32 syscalls are not traced on arm64.
func compatHelper() error { return errors.New("no compat syscalls on arm64") }
