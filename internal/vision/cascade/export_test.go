package cascade

// SetScalarOnly turns the 8-window path off (on true) for the tests that
// compare it with the scalar one, and returns the previous setting.
func SetScalarOnly(on bool) bool {
	old := scalarOnly
	scalarOnly = on
	return old
}

// Batch8Available reports whether this build and CPU take the 8-window path.
func Batch8Available() bool { return haar8OK }
