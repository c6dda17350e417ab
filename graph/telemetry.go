package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"usergraph/telemetry"
)

// operationReporter tells the request's log line and metrics which operation ran, by its root
// field, and how it ended. Root fields are checked against the schema's, so that a document
// naming fields that do not exist cannot invent label values.
type operationReporter struct {
	rootFields map[string]bool
}

var (
	_ graphql.HandlerExtension    = operationReporter{}
	_ graphql.ResponseInterceptor = operationReporter{}
)

func newOperationReporter(schema *ast.Schema) operationReporter {
	fields := map[string]bool{"__schema": true, "__type": true, "__typename": true}
	for _, def := range []*ast.Definition{schema.Query, schema.Mutation} {
		if def == nil {
			continue
		}
		for _, f := range def.Fields {
			fields[f.Name] = true
		}
	}
	return operationReporter{rootFields: fields}
}

func (operationReporter) ExtensionName() string                          { return "OperationReporter" }
func (operationReporter) Validate(schema graphql.ExecutableSchema) error { return nil }

func (o operationReporter) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	info := telemetry.InfoFrom(ctx)
	if info == nil || resp == nil {
		return resp
	}
	info.Operation = "none"
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil {
			info.Operation = o.label(op)
		}
	}
	info.Code = "OK"
	if len(resp.Errors) > 0 {
		info.Code = "ERROR"
		if code, ok := resp.Errors[0].Extensions["code"].(string); ok {
			info.Code = code
		}
	}
	return resp
}

// label names an operation by its one root field, or "multiple".
func (o operationReporter) label(op *ast.OperationDefinition) string {
	name := ""
	for _, sel := range op.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || !o.rootFields[f.Name] || (name != "" && name != f.Name) {
			return "multiple"
		}
		name = f.Name
	}
	if name == "" {
		return "none"
	}
	return name
}
