package task

import _ "example.com/fake/internal/store"
