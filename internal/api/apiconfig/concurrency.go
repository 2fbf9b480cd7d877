package apiconfig

import (
	"errors"
	"flag"
	"runtime"
	"time"
)

// Concurrency bounds how many action calls of each class this server runs
// at once, so that overload is answered rather than suffered: a call past
// its class's limit waits in the class's queue, at most QueueWait, and is
// refused with RequestLimitExceeded (and Retry-After) when the queue is
// full or the wait ends. The classes come from the action registry: Read
// actions (Describe*), Write actions, and Invoke actions (those that run a
// flow or an algorithm: InvokeFlow, InvokeAlgorithm, RunFlowTest). A limit
// of 0 is unlimited.
type Concurrency struct {
	Read   int `yaml:"read"`
	Write  int `yaml:"write"`
	Invoke int `yaml:"invoke"`
	// Queue bounds the calls of one class waiting for a slot (0: none
	// wait; a call past the limit is refused at once).
	Queue int `yaml:"queue"`
	// QueueWait bounds how long a call waits for a slot.
	QueueWait time.Duration `yaml:"queue_wait"`
}

// DefaultConcurrency returns limits sized for this machine (GOMAXPROCS):
// reads are short store queries, so many run at once; writes queue on the
// store's writer anyway; invocations are CPU work, a few per core.
func DefaultConcurrency() Concurrency {
	n := runtime.GOMAXPROCS(0)
	return Concurrency{Read: 32 * n, Write: 8 * n, Invoke: 4 * n, Queue: 512, QueueWait: 5 * time.Second}
}

// RegisterFlags binds the fields to flags prefixed "api.concurrency.".
func (c *Concurrency) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Read, "api.concurrency.read", c.Read, "read actions (Describe*) this server runs at once; more wait in the queue (0: unlimited; default 32 per CPU)")
	fs.IntVar(&c.Write, "api.concurrency.write", c.Write, "write actions this server runs at once; more wait in the queue (0: unlimited; default 8 per CPU)")
	fs.IntVar(&c.Invoke, "api.concurrency.invoke", c.Invoke, "flow and algorithm invocations (InvokeFlow, InvokeAlgorithm, RunFlowTest) this server runs at once; more wait in the queue (0: unlimited; default 4 per CPU)")
	fs.IntVar(&c.Queue, "api.concurrency.queue", c.Queue, "calls of one class that may wait for a slot; more are refused with RequestLimitExceeded (0: none wait)")
	fs.DurationVar(&c.QueueWait, "api.concurrency.queue-wait", c.QueueWait, "longest wait for a slot before a call is refused with RequestLimitExceeded")
}

// Validate checks the configuration.
func (c Concurrency) Validate() error {
	const most = 1 << 20
	if c.Read < 0 || c.Write < 0 || c.Invoke < 0 || c.Queue < 0 || c.Read > most || c.Write > most || c.Invoke > most || c.Queue > most {
		return errors.New("api.concurrency.read, write, invoke, queue: must be between 0 and 1048576")
	}
	if c.QueueWait < 0 || c.QueueWait > time.Minute {
		return errors.New("api.concurrency.queue_wait: must be between 0 and 1m")
	}
	return nil
}
