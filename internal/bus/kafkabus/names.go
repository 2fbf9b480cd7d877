package kafkabus

import (
	"fmt"
	"strings"
)

// Every character a bus topic may hold ([a-z0-9._-]) is legal in a Kafka
// topic name, but Kafka refuses to create a topic whose name differs from
// an existing one only by '.' against '_' ("a.b" and "a_b"), because both
// become the same metric name. Bus topics may hold both characters, so the
// mapping replaces '_' with 'U': bus topics are lower case, so an upper
// case letter cannot come from anywhere else, the mapping is one to one
// and reversible, and the Kafka name has the same length as the topic.
// The dots stay, so a Kafka name still reads like the topic.

// underscore stands for '_' in Kafka topic names.
const underscore = 'U'

// kafkaTopic returns the Kafka topic that holds a bus topic: the bus's
// topic prefix, then the topic with '_' replaced by 'U'.
func kafkaTopic(prefix, topic string) string {
	return prefix + strings.ReplaceAll(topic, "_", string(underscore))
}

// busTopic reverses kafkaTopic; ok is false for a Kafka topic that no bus
// topic maps to.
func busTopic(prefix, name string) (topic string, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" || strings.Contains(rest, "_") {
		return "", false
	}
	return strings.ReplaceAll(rest, string(underscore), "_"), true
}

// groupSep separates the Kafka topic from the durable in a consumer group
// id. Neither Kafka topic names nor durables can contain it, so the group
// of a durable is unambiguous, and all groups of a topic share the prefix
// kafkaTopic + groupSep.
const groupSep = "/"

// groupID returns the consumer group of a durable on a bus topic. A
// durable is scoped to its topic in the bus, so the group id names both.
func groupID(prefix, topic, durable string) string {
	return kafkaTopic(prefix, topic) + groupSep + durable
}

// groupPrefix is what the ids of all consumer groups of a topic start
// with.
func groupPrefix(prefix, topic string) string {
	return kafkaTopic(prefix, topic) + groupSep
}

// checkPrefix validates the prefix URL parameter: Kafka topic characters
// only, and no '_' or upper case, so that the mapping stays reversible.
func checkPrefix(p string) error {
	if len(p) > 64 {
		return fmt.Errorf("at most 64 characters")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("character %q not allowed (use a-z, 0-9, '.', '-')", rune(c))
		}
	}
	return nil
}
