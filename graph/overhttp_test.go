package graph

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"usergraph/internal/dbtest"
)

// The media type of a response is the one the Accept header weighs highest; between the two
// named equally, application/graphql-response+json; for a client that names neither,
// application/json. GET and POST negotiate alike.
func TestGraphQLMediaTypes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits)
	const (
		js = "application/json"
		gr = "application/graphql-response+json"
	)
	cases := []struct {
		name       string
		accept     []string
		wantStatus int
		wantMedia  string
	}{
		{"NoAcceptHeaderIsJSON", nil, 200, js},
		{"EmptyAcceptHeaderIsJSON", []string{""}, 200, js},
		{"JSON", []string{js}, 200, js},
		{"GraphQLResponse", []string{gr}, 200, gr},
		{"GraphQLResponseInUTF8", []string{gr + "; charset=utf-8"}, 200, gr},
		{"AnyTypeIsJSON", []string{"*/*"}, 200, js},
		{"AnyApplicationTypeIsJSON", []string{"application/*"}, 200, js},
		{"BothNamedPrefersGraphQLResponse", []string{js + ", " + gr}, 200, gr},
		{"BothNamedInTwoHeadersPrefersGraphQLResponse", []string{js, gr}, 200, gr},
		{"TheSpecsRecommendedHeader", []string{gr + ", " + js + ";q=0.9"}, 200, gr},
		{"HigherWeightWins", []string{gr + ";q=0.5, " + js}, 200, js},
		{"NamedTypeBeatsWildcardOfEqualWeight", []string{"*/*, " + gr}, 200, gr},
		{"ZeroWeightRefusesANamedType", []string{gr + ";q=0, */*"}, 200, js},
		{"BrowserNavigationIsJSON", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, 200, js},
		{"NeitherTypeIsNotAcceptable", []string{"text/html"}, 406, js},
		{"ZeroWeightOnlyIsNotAcceptable", []string{js + ";q=0"}, 406, js},
		{"AnotherCharsetIsNotAcceptable", []string{js + "; charset=utf-16"}, 406, js},
	}
	requests := map[string]func() *http.Request{
		"POST": func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query": "{ __typename }"}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		},
		"GET": func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/graphql?query="+url.QueryEscape("{ __typename }"), nil)
			return req
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for method, request := range requests {
				t.Run(method, func(t *testing.T) {
					req := request()
					for _, a := range tc.accept {
						req.Header.Add("Accept", a)
					}
					r := doRaw(t, req)
					if r.Status != tc.wantStatus || r.MediaType() != tc.wantMedia {
						t.Errorf("got %d %s, want %d %s: %s", r.Status, r.Header.Get("Content-Type"), tc.wantStatus, tc.wantMedia, r.Body)
					}
					if got, want := r.Header.Get("Content-Type"), tc.wantMedia+"; charset=utf-8"; got != want {
						t.Errorf("got Content-Type %q, want %q", got, want)
					}
					if !slices.Contains(r.Header.Values("Vary"), "Accept") {
						t.Errorf("got Vary %q, want Accept", r.Header.Values("Vary"))
					}
					if wantCode := map[int]string{406: "NOT_ACCEPTABLE"}[tc.wantStatus]; r.Code() != wantCode {
						t.Errorf("got code %q, want %q", r.Code(), wantCode)
					}
				})
			}
		})
	}
}

// A request error (the document does not parse or validate, the variables do not coerce, no
// operation is named, a limit is exceeded) has no data entry: application/graphql-response+json
// says so with a 400, application/json with a 200, as the GraphQL-over-HTTP spec has it. A body
// that is not a GraphQL request at all is a 400 in either; an unknown persisted query is a 200 in
// either, for Apollo clients; errors from resolvers come with data and a 200.
func TestGraphQLRequestErrorStatuses(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits)
	aliasedMutations := func(n int) string {
		var b strings.Builder
		b.WriteString("mutation {")
		for i := range n {
			fmt.Fprintf(&b, ` u%d: deleteUser(id: "%d")`, i, i)
		}
		return mustJSON(map[string]any{"query": b.String() + "}"})
	}
	cases := []struct {
		name            string
		body            string
		wantJSON        int
		wantGraphQLResp int
		wantCode        string
		wantData        bool
	}{
		{"DocumentDoesNotParse", `{"query": "{ me { id "}`, 200, 400, "GRAPHQL_PARSE_FAILED", false},
		{"EmptyDocument", `{"query": ""}`, 200, 400, "GRAPHQL_VALIDATION_FAILED", false},
		{"DocumentDoesNotValidate", `{"query": "{ me { password } }"}`, 200, 400, "GRAPHQL_VALIDATION_FAILED", false},
		{"VariablesDoNotCoerce", `{"query": "query($id: ID!) { user(id: $id) { id } }", "variables": {"id": null}}`, 200, 400, "GRAPHQL_VALIDATION_FAILED", false},
		{"NoOperationOfThatName", `{"query": "query A { me { id } }", "operationName": "B"}`, 200, 400, "GRAPHQL_VALIDATION_FAILED", false},
		{"OperationNotNamedAmongSeveral", `{"query": "query A { me { id } } query B { me { id } }"}`, 200, 400, "GRAPHQL_VALIDATION_FAILED", false},
		{"OverTheComplexityLimit", aliasedMutations(150), 200, 400, codeComplexity, false},
		{"PersistedQueryNotFound", `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "` + strings.Repeat("ab", 32) + `"}}}`, 200, 200, "PERSISTED_QUERY_NOT_FOUND", false},
		{"ResolverErrorKeepsData", `{"query": "{ me { id } }"}`, 200, 200, "UNAUTHENTICATED", true},
		{"NotJSON", `{"query": `, 400, 400, "BAD_USER_INPUT", false},
		{"NoQuery", `{"qeury": "{ me { id } }"}`, 400, 400, "BAD_USER_INPUT", false},
		{"NullQuery", `{"query": null}`, 400, 400, "BAD_USER_INPUT", false},
		{"QueryNotAString", `{"query": 1}`, 400, 400, "BAD_USER_INPUT", false},
		{"VariablesNotAnObject", `{"query": "{ me { id } }", "variables": [1]}`, 400, 400, "BAD_USER_INPUT", false},
		{"DuplicateKey", `{"query": "{ me { id } }", "query": "{ me { id } }"}`, 400, 400, "BAD_USER_INPUT", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, accept := range []struct {
				media      string
				wantStatus int
			}{{"application/json", tc.wantJSON}, {"application/graphql-response+json", tc.wantGraphQLResp}} {
				t.Run(accept.media, func(t *testing.T) {
					req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(tc.body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", accept.media)
					r := doRaw(t, req)
					if r.Status != accept.wantStatus || r.MediaType() != accept.media || r.Code() != tc.wantCode {
						t.Errorf("got %d %s %q, want %d %s %q: %s", r.Status, r.MediaType(), r.Code(), accept.wantStatus, accept.media, tc.wantCode, r.Body)
					}
					if _, gotData := r.Entries["data"]; gotData != tc.wantData {
						t.Errorf("got a data entry %t, want %t: %s", gotData, tc.wantData, r.Body)
					}
				})
			}
		})
	}
}

// GET runs queries and refuses mutations with a 405 that names POST; the methods the endpoint
// does not take are 405s naming the ones it does, and POST bodies in other media types are 415s.
// GET's parameters are held to the rules of a JSON body. Every refusal has a code.
func TestGraphQLMethodsAndContentTypes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits)
	u, tok := s.newUser(t)
	mutation := fmt.Sprintf(`mutation { updateUser(id: "%s", input: {username: "viaget"}) { id } }`, u.ID)
	get := func(params string) string { return "/graphql?" + params }
	q := url.QueryEscape

	cases := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        string
		wantStatus  int
		wantAllow   string
		wantCode    string
	}{
		{"GETRunsAQuery", "GET", get("query=" + q("{ me { id } }")), "", "", 200, "", ""},
		{"GETRunsAQueryWithVariables", "GET", get("query=" + q("query($id: ID!) { user(id: $id) { id } }") + "&variables=" + q(`{"id": "`+u.ID+`"}`)), "", "", 200, "", ""},
		{"GETRefusesAMutation", "GET", get("query=" + q(mutation)), "", "", 405, "POST", "METHOD_NOT_ALLOWED"},
		{"GETRefusesAMutationChosenByName", "GET", get("query=" + q("query A { me { id } } "+strings.Replace(mutation, "mutation", "mutation B", 1)) + "&operationName=B"), "", "", 405, "POST", "METHOD_NOT_ALLOWED"},
		{"GETWithoutQuery", "GET", get(""), "", "", 400, "", "BAD_USER_INPUT"},
		{"GETParameterTwice", "GET", get("query=" + q("{ me { id } }") + "&query=" + q(mutation)), "", "", 400, "", "BAD_USER_INPUT"},
		{"GETVariablesWithAKeyTwice", "GET", get("query=" + q("query($id: ID!) { user(id: $id) { id } }") + "&variables=" + q(`{"id": "0", "id": "`+u.ID+`"}`)), "", "", 400, "", "BAD_USER_INPUT"},
		{"GETVariablesNotAnObject", "GET", get("query=" + q("{ me { id } }") + "&variables=" + q(`["x"]`)), "", "", 400, "", "BAD_USER_INPUT"},
		{"GETQueryStringNotURLEncoded", "GET", get("query=%zz"), "", "", 400, "", "BAD_USER_INPUT"},
		{"PUTNotAllowed", "PUT", "/graphql", "application/json", `{"query": "{ me { id } }"}`, 405, "GET, POST, OPTIONS", "METHOD_NOT_ALLOWED"},
		{"DELETENotAllowed", "DELETE", "/graphql", "", "", 405, "GET, POST, OPTIONS", "METHOD_NOT_ALLOWED"},
		{"HEADNotAllowed", "HEAD", "/graphql", "", "", 405, "GET, POST, OPTIONS", ""},
		{"OPTIONSListsTheMethods", "OPTIONS", "/graphql", "", "", 200, "GET, POST, OPTIONS", ""},
		{"POSTWithoutContentType", "POST", "/graphql", "", `{"query": "{ me { id } }"}`, 415, "", "UNSUPPORTED_MEDIA_TYPE"},
		{"POSTAsText", "POST", "/graphql", "text/plain", `{"query": "{ me { id } }"}`, 415, "", "UNSUPPORTED_MEDIA_TYPE"},
		{"POSTAsAForm", "POST", "/graphql", "application/x-www-form-urlencoded", "query=" + q(mutation), 415, "", "UNSUPPORTED_MEDIA_TYPE"},
		{"POSTInAnotherCharset", "POST", "/graphql", "application/json; charset=iso-8859-1", `{"query": "{ me { id } }"}`, 415, "", "UNSUPPORTED_MEDIA_TYPE"},
		{"POSTInUTF8", "POST", "/graphql", "application/json; charset=UTF-8", `{"query": "{ me { id } }"}`, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.URL+tc.target, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			r := doRaw(t, req)
			if r.Status != tc.wantStatus || r.Code() != tc.wantCode {
				t.Errorf("got %d %q, want %d %q: %s", r.Status, r.Code(), tc.wantStatus, tc.wantCode, r.Body)
			}
			if got := r.Header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("got Allow %q, want %q", got, tc.wantAllow)
			}
		})
	}
	if got := dbtest.Stored(t, s.DB, u.ID).Username; got != u.Username {
		t.Errorf("a refused request changed the username to %q", got)
	}

	t.Run("GETDuplicateKeyNamesWhereItIs", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+get("query="+q("{ me { id } }")+"&variables="+q(`{"in": {"a": 1, "a": 2}}`)), nil)
		r := doRaw(t, req)
		want := `duplicate key "a" at variables.in.a in the URL`
		if r.Status != 400 || r.Message() != want {
			t.Errorf("got %d %q, want 400 %q", r.Status, r.Message(), want)
		}
	})
}
