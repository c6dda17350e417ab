package graph

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// The Playground's Docs pane is built from introspection, so a description missing from the
// schema is a blank in the only documentation that many users of the API ever read. The sources
// checked are the ones generated into this package, which introspection answers from, rather than
// the file they were generated from.
func TestSchemaDescribesEverything(t *testing.T) {
	doc, err := parser.ParseSchemas(sources...)
	if err != nil {
		t.Fatal(err)
	}
	if missing := undescribed(doc); len(missing) > 0 {
		t.Errorf("schema.graphqls has no description for:\n  %s", strings.Join(missing, "\n  "))
	}
}

func TestUndescribed(t *testing.T) {
	cases := []struct {
		name string
		sdl  string
		want []string
	}{
		{"EverythingDescribedPasses", `
			"A thing." type T { "Its size." size("In inches." unit: Unit): Int }
			"A unit." enum Unit { "Inches." IN }
			"Its input." input I { "A name." name: String }
			"A time." scalar Time
			"Marks a field." directive @marked("Why." reason: String) on FIELD_DEFINITION`, nil},
		{"TypeWithoutIsReported", `type T { "Its size." size: Int }`, []string{"T"}},
		{"ScalarWithoutIsReported", `scalar Time`, []string{"Time"}},
		{"FieldWithoutIsReported", `"A thing." type T { size: Int }`, []string{"T.size"}},
		{"ArgumentWithoutIsReported", `"A thing." type T { "Its size." size(unit: String): Int }`, []string{"T.size(unit:)"}},
		{"InputFieldWithoutIsReported", `"Its input." input I { name: String }`, []string{"I.name"}},
		{"EnumValueWithoutIsReported", `"A unit." enum Unit { "Inches." IN CM }`, []string{"Unit.CM"}},
		{"BlankDescriptionIsReported", `"  " type T { "Its size." size: Int }`, []string{"T"}},
		{"FieldOfExtensionWithoutIsReported", `"A thing." type T { "Its size." size: Int } extend type T { weight: Int }`, []string{"T.weight"}},
		{"DirectiveWithoutIsReported", `directive @marked(reason: String) on FIELD_DEFINITION`, []string{"@marked", "@marked(reason:)"}},
		{"EveryGapIsReported", `type T { size(unit: String): Int }`, []string{"T", "T.size", "T.size(unit:)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := parser.ParseSchema(&ast.Source{Name: tc.name, Input: tc.sdl})
			if err != nil {
				t.Fatal(err)
			}
			if got := undescribed(doc); !slices.Equal(got, tc.want) {
				t.Errorf("undescribed = %q, want %q", got, tc.want)
			}
		})
	}
}

// undescribed names every type, field, input field, argument, enum value and directive of doc that
// has no description, in the order they are defined. An extension's own members are checked, since
// the Docs pane shows them like the others.
func undescribed(doc *ast.SchemaDocument) []string {
	var missing []string
	check := func(description, format string, args ...any) {
		if strings.TrimSpace(description) == "" {
			missing = append(missing, fmt.Sprintf(format, args...))
		}
	}
	members := func(def *ast.Definition) {
		for _, f := range def.Fields {
			check(f.Description, "%s.%s", def.Name, f.Name)
			for _, a := range f.Arguments {
				check(a.Description, "%s.%s(%s:)", def.Name, f.Name, a.Name)
			}
		}
		for _, v := range def.EnumValues {
			check(v.Description, "%s.%s", def.Name, v.Name)
		}
	}
	for _, def := range doc.Definitions {
		check(def.Description, "%s", def.Name)
		members(def)
	}
	for _, def := range doc.Extensions {
		members(def)
	}
	for _, d := range doc.Directives {
		check(d.Description, "@%s", d.Name)
		for _, a := range d.Arguments {
			check(a.Description, "@%s(%s:)", d.Name, a.Name)
		}
	}
	return missing
}
