// Test files do not count: tests may boot the real thing.
package store

import _ "example.com/fake/internal/task"
