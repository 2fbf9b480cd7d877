package app

// The backends the binary supports, registered by URL scheme.
import (
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"    // file://
	_ "github.com/tianshu-ai/tianshu/internal/blob/s3blob"      // s3://
	_ "github.com/tianshu-ai/tianshu/internal/bus/kafkabus"     // kafka://
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"      // nats://
	_ "github.com/tianshu-ai/tianshu/internal/store/mysql"      // mysql://, mariadb://
	_ "github.com/tianshu-ai/tianshu/internal/store/postgres"   // postgres://, postgresql://
	_ "github.com/tianshu-ai/tianshu/internal/store/sqlite"     // sqlite://, sqlite3://
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"     // hnsw://
	_ "github.com/tianshu-ai/tianshu/internal/vectors/ivf"      // ivf://
	_ "github.com/tianshu-ai/tianshu/internal/vectors/pgvector" // postgres://, postgresql:// (pgvector)
)
