package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// documentLimit refuses, before gqlgen validates it, a document that validation would take long
// over. Validation is not linear in a document's size: it walks every fragment definition, used
// or not, and its overlap check (OverlappingFieldsCanBeMerged) compares same-named fields
// pairwise, through fragments, at every level of nesting, so that one 165 KB document of copies
// of one field in an unused fragment cost seconds of CPU. The complexity limit, applied after
// validation, comes too late to prevent that. The checks here are linear, or stop as soon as the
// document is over a bound, so no document costs more than its cheapest refusal:
//
//   - every node of the document counts against max: each operation, field, fragment spread and
//     inline fragment, each argument, directive, variable definition and literal value, in
//     operations and fragment definitions alike, a fragment counted again wherever it is spread;
//   - the pairs of same-named fields that the overlap check would compare are counted, up to
//     maxOverlapPairs;
//   - an operationName longer than maxOperationNameBytes is refused, since errors quote it.
//
// Documents already in the query cache passed these checks when they got there and are not
// checked again.
type documentLimit struct {
	max    int
	tokens int
	cache  graphql.Cache[*ast.QueryDocument]
}

// maxOverlapPairs bounds the comparisons of same-named fields that validation may make for one
// document. Measured with BenchmarkHostileDocuments, one comparison costs validation about a
// tenth of a microsecond, and a real client's documents need a few hundred at most.
const maxOverlapPairs = 20000

// maxOperationNameBytes bounds the operationName of a request. GraphQL names are identifiers;
// a longer one is not a name any document holds.
const maxOperationNameBytes = 256

var (
	_ graphql.HandlerExtension          = documentLimit{}
	_ graphql.OperationParameterMutator = documentLimit{}
)

func (documentLimit) ExtensionName() string                          { return "DocumentLimit" }
func (documentLimit) Validate(schema graphql.ExecutableSchema) error { return nil }

func (l documentLimit) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if len(params.OperationName) > maxOperationNameBytes {
		err := gqlerror.Errorf("operationName is longer than %d bytes", maxOperationNameBytes)
		errcode.Set(err, errcode.ValidationFailed)
		return err
	}
	if params.Query == "" {
		return nil
	}
	if _, ok := l.cache.Get(ctx, params.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, l.tokens)
	if err != nil {
		// Reported as gqlgen reports it, which saves gqlgen parsing it again to fail the same way.
		if gqlErr, ok := err.(*gqlerror.Error); ok {
			errcode.Set(gqlErr, errcode.ParseFailed)
			return gqlErr
		}
		return nil
	}
	if n := countNodes(doc, l.max); n > l.max {
		err := gqlerror.Errorf("the document is too large: it holds more than %d fields, arguments, directives, variables, values and other nodes (fragments counted wherever they are spread)", l.max)
		errcode.Set(err, codeComplexity)
		return err
	}
	if overlapPairs(doc, maxOverlapPairs) > maxOverlapPairs {
		err := gqlerror.Errorf("the document repeats fields too often: validating it would compare more than %d pairs of fields with the same name", maxOverlapPairs)
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// countNodes returns how many nodes doc holds, fragments counted wherever they are spread and
// fragments spread nowhere counted as written, or some number over limit as soon as it is clear
// the count exceeds it.
func countNodes(doc *ast.QueryDocument, limit int) int {
	fragments := make(map[string]*ast.FragmentDefinition, len(doc.Fragments))
	for _, f := range doc.Fragments {
		fragments[f.Name] = f
	}
	total := 0
	over := func() bool { return total > limit }
	var value func(v *ast.Value)
	value = func(v *ast.Value) {
		if v == nil {
			return
		}
		total++
		for _, c := range v.Children {
			if over() {
				return
			}
			value(c.Value)
		}
	}
	directives := func(list ast.DirectiveList) {
		for _, d := range list {
			total++
			for _, a := range d.Arguments {
				total++
				value(a.Value)
			}
		}
	}
	spread := map[string]bool{}
	visiting := map[string]bool{}
	var selections func(set ast.SelectionSet)
	selections = func(set ast.SelectionSet) {
		for _, sel := range set {
			if over() {
				return
			}
			total++
			switch s := sel.(type) {
			case *ast.Field:
				for _, a := range s.Arguments {
					total++
					value(a.Value)
				}
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.InlineFragment:
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.FragmentSpread:
				directives(s.Directives)
				f, ok := fragments[s.Name]
				if !ok || visiting[s.Name] {
					break // unknown or cyclic: validation says so
				}
				// No memo: a fragment spread n times costs validation n times over, and the
				// count stops at the limit, so a fragment that multiplies stops it soon.
				spread[s.Name] = true
				visiting[s.Name] = true
				selections(f.SelectionSet)
				visiting[s.Name] = false
			}
		}
	}
	for _, op := range doc.Operations {
		total++
		for _, v := range op.VariableDefinitions {
			total++
			value(v.DefaultValue)
			directives(v.Directives)
		}
		directives(op.Directives)
		selections(op.SelectionSet)
		if over() {
			return total
		}
	}
	// Validation walks the fragments that nothing spreads too, before it says so.
	for _, f := range doc.Fragments {
		if spread[f.Name] {
			continue
		}
		spread[f.Name] = true // counted once, however it spreads other unused ones
		total++
		directives(f.Directives)
		selections(f.SelectionSet)
		if over() {
			return total
		}
	}
	return total
}

// overlapPairs returns how many pairs of fields with the same response name validation's overlap
// check compares in doc, counting the fields it gathers to find them too, or some number over
// budget as soon as it is clear that there are more. It is an upper bound: validation remembers
// which fragments it has compared, where this counts them again, as if every spread were written
// out in place.
func overlapPairs(doc *ast.QueryDocument, budget int) int {
	o := overlapCounter{
		budget:    budget,
		fragments: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		visiting:  make(map[string]bool, len(doc.Fragments)),
		gathered:  map[*ast.Field]map[string][]*ast.Field{},
	}
	for _, f := range doc.Fragments {
		o.fragments[f.Name] = f
	}
	var walk func(set ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		if len(set) == 0 || o.spent > o.budget {
			return
		}
		o.within(o.gather(set, nil))
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			}
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		walk(f.SelectionSet)
	}
	return o.spent
}

// overlapCounter is the state of overlapPairs.
type overlapCounter struct {
	budget, spent int
	fragments     map[string]*ast.FragmentDefinition
	// visiting holds the fragments that the gathering under way is inside, against cycles; made
	// once, as a gathering leaves it as it found it.
	visiting map[string]bool
	// gathered holds, for each field already seen, the fields of its selection set by response
	// name, so that comparing it again does not gather them again.
	gathered map[*ast.Field]map[string][]*ast.Field
}

// gather returns the fields of set by response name, through inline fragments and fragment
// spreads, as validation collects them.
func (o *overlapCounter) gather(set ast.SelectionSet, owner *ast.Field) map[string][]*ast.Field {
	if owner != nil {
		if g, ok := o.gathered[owner]; ok {
			return g
		}
	}
	byName := map[string][]*ast.Field{}
	visiting := o.visiting
	var add func(set ast.SelectionSet)
	add = func(set ast.SelectionSet) {
		for _, sel := range set {
			if o.spent++; o.spent > o.budget {
				return
			}
			switch s := sel.(type) {
			case *ast.Field:
				name := s.Alias
				if name == "" {
					name = s.Name
				}
				byName[name] = append(byName[name], s)
			case *ast.InlineFragment:
				add(s.SelectionSet)
			case *ast.FragmentSpread:
				if f, ok := o.fragments[s.Name]; ok && !visiting[s.Name] {
					visiting[s.Name] = true
					add(f.SelectionSet)
					visiting[s.Name] = false
				}
			}
		}
	}
	add(set)
	if owner != nil {
		o.gathered[owner] = byName
	}
	return byName
}

// within counts the pairs compared inside one gathered selection set.
func (o *overlapCounter) within(byName map[string][]*ast.Field) {
	for _, fields := range byName {
		for i, a := range fields {
			for _, b := range fields[i+1:] {
				if o.pair(a, b); o.spent > o.budget {
					return
				}
			}
		}
	}
}

// pair counts the comparison of two same-named fields, and of their selection sets.
func (o *overlapCounter) pair(a, b *ast.Field) {
	o.spent++
	if len(a.SelectionSet) == 0 || len(b.SelectionSet) == 0 || o.spent > o.budget {
		return
	}
	inA, inB := o.gather(a.SelectionSet, a), o.gather(b.SelectionSet, b)
	for name, fieldsA := range inA {
		for _, x := range fieldsA {
			for _, y := range inB[name] {
				if o.pair(x, y); o.spent > o.budget {
					return
				}
			}
		}
	}
}

// complexityLimit refuses a document whose complexity exceeds limit, as gqlgen's
// extension.FixedComplexityLimit does, but works it out once per document rather than once per
// request: the walk over the document allocated more than the rest of the GraphQL layer's own
// work for an updateUser. To make the result a property of the document alone, variables are not
// consulted: users(first: $n) counts as a full page (see NewHandler), the worst case whatever $n.
type complexityLimit struct {
	limit int
	es    graphql.ExecutableSchema
	known *boundedCache[complexityKey, int]
}

var (
	_ graphql.HandlerExtension        = (*complexityLimit)(nil)
	_ graphql.OperationContextMutator = (*complexityLimit)(nil)
)

func newComplexityLimit(limit int) *complexityLimit {
	return &complexityLimit{limit: limit, known: newBoundedCache(complexityCacheBytes, complexityWeight)}
}

func (*complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(schema graphql.ExecutableSchema) error {
	c.es = schema
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	key := complexityKey{operation: opCtx.OperationName, query: opCtx.RawQuery}
	n, ok := c.known.Get(ctx, key)
	if !ok {
		n = complexity.Calculate(ctx, c.es, opCtx.Operation, nil)
		c.known.Add(ctx, key, n)
	}
	if n > c.limit {
		err := gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", n, c.limit)
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// errorCap keeps at most max errors in a response, and says how many it left out, and cuts each
// message to maxErrorMessageBytes. Some validation rules report one error per offending node, and
// some quote the value at fault; without a cap, the answer to a hostile document could be far
// larger than the document.
type errorCap struct{ max int }

// maxErrorMessageBytes bounds the message of one error.
const maxErrorMessageBytes = 1024

var (
	_ graphql.HandlerExtension    = errorCap{}
	_ graphql.ResponseInterceptor = errorCap{}
)

func (errorCap) ExtensionName() string                          { return "ErrorCap" }
func (errorCap) Validate(schema graphql.ExecutableSchema) error { return nil }

func (c errorCap) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return resp
	}
	for _, e := range resp.Errors {
		if len(e.Message) > maxErrorMessageBytes {
			e.Message = strings.ToValidUTF8(e.Message[:maxErrorMessageBytes], "") + "…"
		}
	}
	if len(resp.Errors) <= c.max {
		return resp
	}
	omitted := len(resp.Errors) - c.max + 1
	last := gqlerror.Errorf("%d more errors like the ones above were left out", omitted)
	last.Extensions = map[string]any{"code": resp.Errors[0].Extensions["code"]}
	resp.Errors = append(resp.Errors[:c.max-1:c.max-1], last)
	return resp
}

// String describes the limits, for the start-up log.
func (l Limits) String() string {
	return fmt.Sprintf("body %d B, %d tokens, %d fields, complexity %d, batch %d, introspection %v",
		l.MaxBodyBytes, l.Tokens, l.Fields, l.Complexity, l.Batch, l.Introspection)
}
