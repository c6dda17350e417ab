package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// codeComplexity is gqlgen's code for a document over the complexity limit; a document with too
// many fields is over the same kind of limit.
const codeComplexity = "COMPLEXITY_LIMIT_EXCEEDED"

// fieldLimit refuses a document that selects more than max fields, counting each fragment spread
// as the fields of its fragment, before the document is validated. Validation compares the fields
// of a selection set pairwise (OverlappingFieldsCanBeMerged), so its cost grows with the square of
// their number: 5,000 copies of one field cost seconds of CPU, which the complexity limit, applied
// after validation, comes too late to prevent. Counting is linear. Documents already in the query
// cache were counted when they got there and are not counted again.
type fieldLimit struct {
	max    int
	tokens int
	cache  graphql.Cache[*ast.QueryDocument]
}

var (
	_ graphql.HandlerExtension          = fieldLimit{}
	_ graphql.OperationParameterMutator = fieldLimit{}
)

func (fieldLimit) ExtensionName() string                          { return "FieldLimit" }
func (fieldLimit) Validate(schema graphql.ExecutableSchema) error { return nil }

func (l fieldLimit) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.Query == "" {
		return nil
	}
	if _, ok := l.cache.Get(ctx, params.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, l.tokens)
	if err != nil {
		return nil // gqlgen parses it again and reports the error in its standard way
	}
	if n := countFields(doc, l.max); n > l.max {
		err := gqlerror.Errorf("the document selects more than %d fields (counting fragments where they are spread)", l.max)
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// countFields returns how many fields doc selects, fragments counted where they are spread, or
// some number over limit as soon as it is clear the count exceeds it.
func countFields(doc *ast.QueryDocument, limit int) int {
	fragments := map[string]*ast.FragmentDefinition{}
	for _, f := range doc.Fragments {
		fragments[f.Name] = f
	}
	memo := map[string]int{}
	visiting := map[string]bool{}
	var count func(ast.SelectionSet) int
	count = func(set ast.SelectionSet) int {
		n := 0
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				n += 1 + count(s.SelectionSet)
			case *ast.InlineFragment:
				n += count(s.SelectionSet)
			case *ast.FragmentSpread:
				if c, ok := memo[s.Name]; ok {
					n += c
					break
				}
				f, ok := fragments[s.Name]
				if !ok || visiting[s.Name] {
					break // unknown or cyclic: validation says so
				}
				visiting[s.Name] = true
				c := count(f.SelectionSet)
				visiting[s.Name] = false
				memo[s.Name] = c
				n += c
			}
			if n > limit {
				return n
			}
		}
		return n
	}
	total := 0
	for _, op := range doc.Operations {
		total += count(op.SelectionSet)
		if total > limit {
			break
		}
	}
	return total
}

// complexityLimit refuses a document whose complexity exceeds limit, as gqlgen's
// extension.FixedComplexityLimit does, but works it out once per document rather than once per
// request: the walk over the document allocated more than the rest of the GraphQL layer's own
// work for an updateUser. To make the result a property of the document alone, variables are not
// consulted: users(first: $n) counts as a full page (see NewHandler), the worst case whatever $n.
type complexityLimit struct {
	limit int
	es    graphql.ExecutableSchema
	known *lru.Cache[string, int]
}

var (
	_ graphql.HandlerExtension        = (*complexityLimit)(nil)
	_ graphql.OperationContextMutator = (*complexityLimit)(nil)
)

func newComplexityLimit(limit int) *complexityLimit {
	known, _ := lru.New[string, int](1000)
	return &complexityLimit{limit: limit, known: known}
}

func (*complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(schema graphql.ExecutableSchema) error {
	c.es = schema
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	key := opCtx.OperationName + "\x00" + opCtx.RawQuery
	n, ok := c.known.Get(key)
	if !ok {
		n = complexity.Calculate(ctx, c.es, opCtx.Operation, nil)
		c.known.Add(key, n)
	}
	if n > c.limit {
		err := gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", n, c.limit)
		errcode.Set(err, codeComplexity)
		return err
	}
	return nil
}

// errorCap keeps at most max errors in a response, and says how many it left out. Some
// validation rules report one error per offending node; without a cap, the answer to a hostile
// document could be far larger than the document.
type errorCap struct{ max int }

var (
	_ graphql.HandlerExtension    = errorCap{}
	_ graphql.ResponseInterceptor = errorCap{}
)

func (errorCap) ExtensionName() string                          { return "ErrorCap" }
func (errorCap) Validate(schema graphql.ExecutableSchema) error { return nil }

func (c errorCap) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || len(resp.Errors) <= c.max {
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
