//go:build ignore

// A generator run by hand does not count.
package main

import _ "example.com/fake/internal/task"
