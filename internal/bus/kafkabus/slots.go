package kafkabus

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Subscriptions sharing a durable share its topic's one partition by
// slots: every record belongs to one of numSlots slots (by its key, or by
// its offset when it has none), the durable's consumer group divides the
// slots among its members, and each slot keeps its own position, committed
// in a side group of its own. See the package documentation.

// numSlots is how many slots a durable's records are divided into, and so
// how many subscriptions at most can share one durable's work (others are
// standbys). It is part of the durable's stored state (the side groups'
// names and what they hold), so it must not change.
const numSlots = 16

// slotOf returns the slot of a record. A key's records share a slot, so a
// key moves between subscriptions only with its slot; keyless records are
// spread by offset.
func slotOf(key []byte, offset int64) int {
	if len(key) == 0 {
		return int(offset % numSlots)
	}
	h := fnv.New32a()
	h.Write(key)
	return int(h.Sum32() % numSlots)
}

// slotSep separates a durable's group id from the slot number in the id
// of the slot's side group. Durable names cannot contain it.
const slotSep = "#"

// slotGroup returns the id of the side group that holds the position of
// one slot of the durable whose consumer group is group.
func slotGroup(group string, slot int) string {
	return group + slotSep + strconv.Itoa(slot)
}

// slotGroups returns the ids of all side groups of a durable.
func slotGroups(group string) []string {
	gs := make([]string, numSlots)
	for i := range gs {
		gs[i] = slotGroup(group, i)
	}
	return gs
}

// slotProtocol names the group protocol (the balancer) and prefixes the
// user data it writes.
const slotProtocol = "tianshu-slots1"

// claim is what a member tells the group leader when it joins: the slots
// it had in the last assignment (which it would like to keep) and the
// slots whose handlers are still running (which it must keep, so that no
// other member takes their records while they run).
type claim struct {
	generation int32
	had        []int
	busy       []int
}

func formatSlots(slots []int) string {
	if len(slots) == 0 {
		return "-"
	}
	s := make([]string, len(slots))
	for i, x := range slots {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func parseSlots(s string) ([]int, error) {
	if s == "-" {
		return nil, nil
	}
	var slots []int
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.Atoi(f)
		if err != nil || x < 0 || x >= numSlots {
			return nil, fmt.Errorf("bad slot %q", f)
		}
		slots = append(slots, x)
	}
	return slots, nil
}

func (c claim) encode() []byte {
	return fmt.Appendf(nil, "%s %d %s %s", slotProtocol, c.generation, formatSlots(c.had), formatSlots(c.busy))
}

func parseClaim(b []byte) (claim, error) {
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0] != slotProtocol {
		return claim{}, fmt.Errorf("kafkabus: member metadata %q is not %s", b, slotProtocol)
	}
	gen, err := strconv.ParseInt(f[1], 10, 32)
	if err != nil {
		return claim{}, fmt.Errorf("kafkabus: member metadata %q: %v", b, err)
	}
	c := claim{generation: int32(gen)}
	if c.had, err = parseSlots(f[2]); err == nil {
		c.busy, err = parseSlots(f[3])
	}
	if err != nil {
		return claim{}, fmt.Errorf("kafkabus: member metadata %q: %v", b, err)
	}
	return c, nil
}

func encodeAssignment(slots []int) []byte {
	return fmt.Appendf(nil, "%s %s", slotProtocol, formatSlots(slots))
}

func parseAssignment(b []byte) ([]int, error) {
	rest, ok := strings.CutPrefix(string(b), slotProtocol+" ")
	if !ok {
		return nil, fmt.Errorf("kafkabus: assignment %q is not %s", b, slotProtocol)
	}
	return parseSlots(rest)
}

// assignSlots divides the slots among members that made claims, returning
// each one's slots in order. A busy slot stays with its claimant (the one
// of the latest generation, should two claim it); then members keep the
// slots they had, up to an even share; the rest go to the members furthest
// below their share. It is deterministic, as the group leader's plan
// should be.
func assignSlots(claims []claim) [][]int {
	n := len(claims)
	out := make([][]int, n)
	if n == 0 {
		return out
	}
	var owner, ownerGen [numSlots]int
	for x := range owner {
		owner[x] = -1
	}
	count := make([]int, n)
	for i, c := range claims {
		for _, x := range c.busy {
			if owner[x] == -1 || int(c.generation) > ownerGen[x] {
				if owner[x] >= 0 {
					count[owner[x]]--
				}
				owner[x], ownerGen[x] = i, int(c.generation)
				count[i]++
			}
		}
	}
	share := func(i int) int {
		s := numSlots / n
		if i < numSlots%n {
			s++
		}
		return s
	}
	for i, c := range claims {
		for _, x := range c.had {
			if owner[x] == -1 && count[i] < share(i) {
				owner[x] = i
				count[i]++
			}
		}
	}
	for x := range owner {
		if owner[x] != -1 {
			continue
		}
		best := 0
		for i := 1; i < n; i++ {
			if count[i]-share(i) < count[best]-share(best) {
				best = i
			}
		}
		owner[x] = best
		count[best]++
	}
	for x, i := range owner {
		out[i] = append(out[i], x)
	}
	return out
}

// slotBalancer is the group balancer of a durable's consumer group. Every
// member is assigned the topic's partition as far as Kafka's tools see it;
// the slots it may handle travel in the assignment's user data. The
// partition is not handed to franz-go's group consumer, which would fetch
// it: the subscription fetches with a client of its own from where its
// slots need (see subscription.run).
type slotBalancer struct{ s *subscription }

var (
	_ kgo.GroupBalancer       = slotBalancer{}
	_ kgo.GroupMemberBalancer = (*slotPlan)(nil)
	_ kgo.IntoSyncAssignment  = (*slotPlan)(nil)
)

func (slotBalancer) ProtocolName() string { return slotProtocol }

func (slotBalancer) IsCooperative() bool { return false }

func (sb slotBalancer) JoinGroupMetadata(topics []string, _ map[string][]int32, generation int32) []byte {
	c := sb.s.claim()
	c.generation = generation
	m := kmsg.ConsumerMemberMetadata{Topics: topics, UserData: c.encode()}
	return m.AppendTo(nil)
}

func (sb slotBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("kafkabus: assignment: %w", err)
	}
	var slots []int
	if len(a.Topics) > 0 {
		var err error
		if slots, err = parseAssignment(a.UserData); err != nil {
			return nil, err
		}
	}
	sb.s.setAssigned(slots)
	return map[string][]int32{}, nil
}

func (sb slotBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	p := &slotPlan{topics: map[string]struct{}{}}
	var errs []error
	for _, m := range members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.ProtocolMetadata); err != nil {
			errs = append(errs, fmt.Errorf("kafkabus: member %s metadata: %w", m.MemberID, err))
			continue
		}
		c, err := parseClaim(md.UserData)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range md.Topics {
			p.topics[t] = struct{}{}
		}
		p.members = append(p.members, m.MemberID)
		p.claims = append(p.claims, c)
	}
	if len(p.members) == 0 {
		return nil, nil, errors.Join(append(errs, errors.New("kafkabus: no member to balance"))...)
	}
	return p, p.topics, nil
}

// slotPlan is the leader's balance of one generation.
type slotPlan struct {
	members []string
	claims  []claim
	topics  map[string]struct{}
}

func (p *slotPlan) Balance(map[string]int32) kgo.IntoSyncAssignment { return p }

func (p *slotPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	var topics []kmsg.ConsumerMemberAssignmentTopic
	for t := range p.topics {
		topics = append(topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: []int32{0}})
	}
	var out []kmsg.SyncGroupRequestGroupAssignment
	for i, slots := range assignSlots(p.claims) {
		a := kmsg.ConsumerMemberAssignment{}
		if len(slots) > 0 {
			a.Topics = topics
			a.UserData = encodeAssignment(slots)
		}
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = p.members[i]
		sa.MemberAssignment = a.AppendTo(nil)
		out = append(out, sa)
	}
	return out
}
