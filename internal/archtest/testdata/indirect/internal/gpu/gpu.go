package gpu

import _ "example.com/fake/internal/task"
