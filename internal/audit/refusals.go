package audit

import (
	"cmp"
	"container/heap"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/tillit-sts/tillit/internal/store"
)

// EndpointAggregate is the Endpoint of the refusals aggregate: it is about
// requests to every endpoint, and about none in particular.
const EndpointAggregate = "aggregate"

// AggregateEvery is the least time between two aggregate records of one
// instance.
const AggregateEvery = time.Minute

// The bounds of an aggregate, whatever is refused and from where.
const (
	// TopSources is how many source addresses an aggregate names.
	TopSources = 10
	// sourceSlots is how many addresses are counted at once. Ten times
	// the addresses named, so that those named are almost always the
	// busiest ones (space-saving: an address with more than a
	// sourceSlots-th of the refusals is certain to hold a slot).
	sourceSlots = 10 * TopSources
	// maxAddress bounds an address; the longest IPv6 text, with a zone,
	// is well under it.
	maxAddress = 64
	// maxKinds bounds the (endpoint, error, status) kinds counted. There
	// are a few dozen; this only guards against a bug that makes codes up.
	maxKinds = 256
)

// Refusals counts the refusals that get no audit record of their own:
// those answered before the client's assertion verified against a
// registered key, 429s and the use_dpop_nonce round trip. Take sums them up
// in one record, at most once every AggregateEvery, so that what a caller
// who has no key can make the server write is bounded by time, not by its
// request rate. Its memory is bounded as well: the counts are by kind, of
// which there are a few dozen, and by source address in a fixed number of
// slots (the space-saving top-k), however many addresses are used.
// It is safe for concurrent use.
type Refusals struct {
	instance string

	mu      sync.Mutex
	last    time.Time // when the last record was taken, or the start
	total   int64
	kinds   map[refusalKind]int64
	sources sources
}

type refusalKind struct {
	endpoint, code string
	status         int
}

// NewRefusals returns the counter of an instance's refusals, started at
// now: the first record is taken no earlier than AggregateEvery later.
func NewRefusals(instance string, now time.Time) *Refusals {
	return &Refusals{instance: instance, last: now, kinds: map[refusalKind]int64{}, sources: newSources()}
}

// Add counts one refusal at endpoint, with its OAuth error code and HTTP
// status, from the source address. A nil *Refusals counts nothing.
func (r *Refusals) Add(endpoint, code string, status int, source string) {
	if r == nil {
		return
	}
	if len(source) > maxAddress {
		source = source[:maxAddress]
	}
	k := refusalKind{endpoint, code, status}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if _, ok := r.kinds[k]; !ok && len(r.kinds) >= maxKinds {
		k = refusalKind{endpoint: endpoint, code: "other"}
	}
	r.kinds[k]++
	r.sources.add(source)
}

// RefusalSummary is what an aggregate record's Details say, as JSON.
type RefusalSummary struct {
	// Since and Until bound the time in which the refusals were counted.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	Total int64     `json:"total"`
	// ByError counts the refusals by endpoint, error code and HTTP
	// status, most first.
	ByError []RefusalCount `json:"by_error"`
	// TopSources are the source addresses with the most refusals, most
	// first, at most TopSources of them.
	TopSources []SourceCount `json:"top_sources"`
}

// RefusalCount is how many refusals of one kind there were.
type RefusalCount struct {
	Endpoint string `json:"endpoint"`
	Error    string `json:"error"`
	Status   int    `json:"status"`
	Count    int64  `json:"count"`
}

// SourceCount is how many refusals came from one address. Count may
// over-count by up to MaxOvercount (the address took over the slot of
// others that had that many); it never under-counts.
type SourceCount struct {
	Address      string `json:"address"`
	Count        int64  `json:"count"`
	MaxOvercount int64  `json:"max_overcount,omitempty"`
}

// Take returns the aggregate record of the refusals counted since the last
// one and starts counting anew, or false when there were none, or, unless
// final, when the last was taken less than AggregateEvery before now.
// final is for the server's stop, so that what it counted is not lost.
func (r *Refusals) Take(now time.Time, final bool) (store.AuditRecord, bool) {
	r.mu.Lock()
	if r.total == 0 || (!final && now.Sub(r.last) < AggregateEvery) {
		r.mu.Unlock()
		return store.AuditRecord{}, false
	}
	s := RefusalSummary{Since: r.last.UTC(), Until: now.UTC(), Total: r.total,
		ByError: make([]RefusalCount, 0, len(r.kinds)), TopSources: r.sources.top(TopSources)}
	for k, n := range r.kinds {
		s.ByError = append(s.ByError, RefusalCount{Endpoint: k.endpoint, Error: k.code, Status: k.status, Count: n})
	}
	r.last, r.total = now, 0
	clear(r.kinds)
	r.sources.reset()
	r.mu.Unlock()

	slices.SortFunc(s.ByError, func(a, b RefusalCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Endpoint, b.Endpoint),
			cmp.Compare(a.Error, b.Error), cmp.Compare(a.Status, b.Status))
	})
	details, err := json.Marshal(s)
	if err != nil {
		panic("audit: a summary of strings and integers always marshals: " + err.Error())
	}
	return store.AuditRecord{
		Instance: r.instance,
		Time:     now,
		Endpoint: EndpointAggregate,
		Outcome:  OutcomeRefusedAggregate,
		Details:  string(details),
	}, true
}

// sources is a space-saving top-k (Metwally, Agrawal and El Abbadi, 2005):
// sourceSlots counters in a min-heap by count. An address that holds a
// slot counts on in it; a new one, with every slot taken, takes over the
// slot with the least count and goes on from that count plus one, which
// it may over-count by (over). Each refusal costs O(log sourceSlots).
type sources struct {
	slots []*slot
	index map[string]*slot
}

type slot struct {
	addr        string
	count, over int64
	i           int // place in the heap
}

func newSources() sources {
	return sources{slots: make([]*slot, 0, sourceSlots), index: make(map[string]*slot, sourceSlots)}
}

func (s *sources) add(addr string) {
	if sl, ok := s.index[addr]; ok {
		sl.count++
		heap.Fix(s, sl.i)
		return
	}
	if len(s.slots) < sourceSlots {
		sl := &slot{addr: addr, count: 1}
		s.index[addr] = sl
		heap.Push(s, sl)
		return
	}
	least := s.slots[0]
	delete(s.index, least.addr)
	least.addr, least.over = addr, least.count
	least.count++
	s.index[addr] = least
	heap.Fix(s, 0)
}

// top returns the n addresses with the highest counts, highest first.
func (s *sources) top(n int) []SourceCount {
	all := make([]SourceCount, 0, len(s.slots))
	for _, sl := range s.slots {
		all = append(all, SourceCount{Address: sl.addr, Count: sl.count, MaxOvercount: sl.over})
	}
	slices.SortFunc(all, func(a, b SourceCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.MaxOvercount, b.MaxOvercount), cmp.Compare(a.Address, b.Address))
	})
	return all[:min(n, len(all))]
}

func (s *sources) reset() {
	clear(s.index)
	clear(s.slots)
	s.slots = s.slots[:0]
}

// heap.Interface, by count.
func (s *sources) Len() int           { return len(s.slots) }
func (s *sources) Less(i, j int) bool { return s.slots[i].count < s.slots[j].count }
func (s *sources) Swap(i, j int) {
	s.slots[i], s.slots[j] = s.slots[j], s.slots[i]
	s.slots[i].i, s.slots[j].i = i, j
}
func (s *sources) Push(x any) {
	sl := x.(*slot)
	sl.i = len(s.slots)
	s.slots = append(s.slots, sl)
}
func (s *sources) Pop() any {
	sl := s.slots[len(s.slots)-1]
	s.slots = s.slots[:len(s.slots)-1]
	return sl
}
