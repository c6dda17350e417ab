package graph

import (
	"context"
	"math"
	"unsafe"

	"github.com/99designs/gqlgen/graphql"
	"github.com/maypok86/otter/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// The byte budgets of the GraphQL layer's caches. Every request can reach them, with or without a
// token, so each is bounded by the memory its entries hold rather than by their number: a
// thousand entries of a 1 MiB document each would be a gigabyte. Together they bound what any
// stream of requests can make the process keep to CacheBytes.
const (
	// documentCacheBytes holds parsed and validated documents, with their text.
	documentCacheBytes = 16 << 20
	// persistedQueryCacheBytes holds the documents of automatic persisted queries by hash.
	persistedQueryCacheBytes = 8 << 20
	// complexityCacheBytes holds the complexity of each operation of the cached documents.
	complexityCacheBytes = 2 << 20

	// CacheBytes is the most memory the caches hold, all together.
	CacheBytes = documentCacheBytes + persistedQueryCacheBytes + complexityCacheBytes

	// maxEntryShare: an entry heavier than this share of its cache's budget is not kept, so that
	// a few large documents cannot push out the many small ones real clients send.
	maxEntryShare = 64
)

// entryOverhead is what the cache itself spends on an entry, beside its key and value.
const entryOverhead = 128

// boundedCache is a cache whose entries are weighed in bytes, with a budget for their sum. Its
// eviction (S3-FIFO) keeps an entry for good only once it is asked for again, so a stream of
// one-off documents from a client cannot push out the documents that clients send again and again.
type boundedCache[K comparable, V any] struct {
	entries  *otter.Cache[K, weighed[V]]
	maxEntry int
	weigh    func(K, V) int
}

// weighed is a cached value with its weight, worked out once when it is added.
type weighed[V any] struct {
	value  V
	weight uint32
}

func newBoundedCache[K comparable, V any](budget int, weigh func(K, V) int) *boundedCache[K, V] {
	return &boundedCache[K, V]{
		entries: otter.Must(&otter.Options[K, weighed[V]]{
			MaximumWeight: uint64(budget),
			Weigher:       func(_ K, v weighed[V]) uint32 { return v.weight },
		}),
		maxEntry: budget / maxEntryShare,
		weigh:    weigh,
	}
}

// Get returns the value cached under key.
func (c *boundedCache[K, V]) Get(_ context.Context, key K) (V, bool) {
	v, ok := c.entries.GetIfPresent(key)
	return v.value, ok
}

// Add caches value under key, unless it is too heavy to keep.
func (c *boundedCache[K, V]) Add(_ context.Context, key K, value V) {
	w := c.weigh(key, value) + entryOverhead
	if w > c.maxEntry {
		return
	}
	c.entries.Set(key, weighed[V]{value: value, weight: uint32(min(w, math.MaxUint32))})
}

var (
	_ graphql.Cache[*ast.QueryDocument] = (*boundedCache[string, *ast.QueryDocument])(nil)
	_ graphql.Cache[string]             = (*boundedCache[string, string])(nil)
)

// stringWeight weighs a cached string under a string key.
func stringWeight(key, value string) int { return len(key) + len(value) }

// documentWeight estimates the memory a parsed document holds: its text (which is also its key)
// and its syntax tree, node by node. Names in the tree share the text's memory; string values
// with escapes do not, and are counted again.
func documentWeight(query string, doc *ast.QueryDocument) int {
	const position = int(unsafe.Sizeof(ast.Position{}))
	const slot = 16 // an interface or pointer in a slice, with room for the slice to grow
	n := len(query) + int(unsafe.Sizeof(*doc))
	var value func(v *ast.Value)
	value = func(v *ast.Value) {
		if v == nil {
			return
		}
		n += int(unsafe.Sizeof(*v)) + position + len(v.Raw)
		for _, c := range v.Children {
			n += int(unsafe.Sizeof(*c)) + position + slot
			value(c.Value)
		}
	}
	arguments := func(args ast.ArgumentList) {
		for _, a := range args {
			n += int(unsafe.Sizeof(*a)) + position + slot
			value(a.Value)
		}
	}
	directives := func(list ast.DirectiveList) {
		for _, d := range list {
			n += int(unsafe.Sizeof(*d)) + position + slot
			arguments(d.Arguments)
		}
	}
	var selections func(set ast.SelectionSet)
	selections = func(set ast.SelectionSet) {
		for _, sel := range set {
			n += slot + position
			switch s := sel.(type) {
			case *ast.Field:
				n += int(unsafe.Sizeof(*s))
				arguments(s.Arguments)
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.InlineFragment:
				n += int(unsafe.Sizeof(*s))
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.FragmentSpread:
				n += int(unsafe.Sizeof(*s))
				directives(s.Directives)
			}
		}
	}
	for _, op := range doc.Operations {
		n += int(unsafe.Sizeof(*op)) + position + slot
		for _, v := range op.VariableDefinitions {
			n += int(unsafe.Sizeof(*v)) + int(unsafe.Sizeof(ast.Type{})) + 2*position + slot
			value(v.DefaultValue)
			directives(v.Directives)
		}
		directives(op.Directives)
		selections(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n += int(unsafe.Sizeof(*f)) + position + slot
		directives(f.Directives)
		selections(f.SelectionSet)
	}
	return n
}

// complexityKey names one operation of one document.
type complexityKey struct {
	operation, query string
}

// complexityWeight weighs a cached complexity. The query is counted though the document cache
// often holds the same string: once that document is evicted, only this entry keeps it.
func complexityWeight(k complexityKey, _ int) int {
	return len(k.operation) + len(k.query) + int(unsafe.Sizeof(k)) + 8
}
