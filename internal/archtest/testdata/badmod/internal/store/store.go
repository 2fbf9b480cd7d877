package store

import _ "example.com/fake/internal/task"
