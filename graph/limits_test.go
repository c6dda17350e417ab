package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// postAnonymously POSTs body to url without a token and returns the status and the answer. With
// no Accept header either, the answer is application/json, where a request error is a 200.
func postAnonymously(tb testing.TB, url string, body []byte) (int, []byte) {
	tb.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, answer
}

// repeat joins n strings that f makes for 0..n-1.
func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
	}
	return b.String()
}

// hostileDocument is a request built to make validation or the caches cost the server far more
// than it costs the client, and how the server must answer it.
type hostileDocument struct {
	name       string
	body       map[string]any
	wantStatus int
	wantCode   string
}

func query(q string) map[string]any { return map[string]any{"query": q} }

// bodyLimit is how long a string in a hostile document can be for the body to stay within the
// default limit.
const bodyLimit = 256<<10 - 64

// hostileDocuments are the shapes of document that reach validation's costly paths, each made as
// large as the default token limit lets it be (perToken is how many tokens one repetition takes).
var hostileDocuments = []hostileDocument{
	// Not hostile: what the others are measured against.
	{"OrdinaryQuery", query("query Me { me { id username email } }"), 200, "UNAUTHENTICATED"},
	// One unused fragment of copies of one field: validation compared them pairwise, for seconds,
	// before it said the fragment was never used.
	{"UnusedFragmentOfOneFieldRepeated", query("{__typename} fragment F on Query {" + strings.Repeat(" __typename", fit(1)) + "}"), 200, codeComplexity},
	{"ManySmallUnusedFragments", query("{__typename}" + repeat(fit(7), func(i int) string { return fmt.Sprintf(" fragment F%d on Query{__typename}", i) })), 200, codeComplexity},
	{"UnusedFragmentsSpreadingEachOther", query("{__typename}" + repeat(fit(8), func(i int) string { return fmt.Sprintf(" fragment F%d on Query{...F%d}", i, i+1) })), 200, codeComplexity},
	{"FragmentsSpreadingEachOtherInACycle", query("{...F0}" + repeat(fit(8), func(i int) string { return fmt.Sprintf(" fragment F%d on Query{...F%d}", i, (i+1)%fit(8)) })), 200, codeComplexity},
	{"FragmentSpreadTenThousandTimes", query("{...A} fragment A on Query{...B ...B ...B ...B ...B ...B ...B ...B ...B ...B} fragment B on Query{...C ...C ...C ...C ...C ...C ...C ...C ...C ...C} fragment C on Query{...D ...D ...D ...D ...D ...D ...D ...D ...D ...D} fragment D on Query{__typename __typename __typename __typename __typename __typename __typename __typename __typename __typename}"), 200, codeComplexity},
	{"OneFieldRepeatedWithinTheFieldLimit", query("{" + strings.Repeat(" __typename", DefaultLimits.Fields-1) + "}"), 200, codeComplexity},
	{"NestedFieldsRepeatedWithinTheFieldLimit", query("{" + strings.Repeat(" me{id}", DefaultLimits.Fields/2-10) + "}"), 200, codeComplexity},
	{"InlineFragmentsRepeated", query("{" + strings.Repeat(" ...on Query{__typename}", DefaultLimits.Fields/2-10) + "}"), 200, codeComplexity},
	{"DirectivesInBulk", query("{__typename" + strings.Repeat(" @skip(if:false)", fit(7)) + "}"), 200, codeComplexity},
	{"UnknownDirectivesInBulk", query("{__typename" + strings.Repeat(" @a", fit(2)) + "}"), 200, codeComplexity},
	{"VariableDefinitionsInBulk", query("query(" + repeat(fit(4), func(i int) string { return fmt.Sprintf("$v%d:Int ", i) }) + "){__typename}"), 200, codeComplexity},
	{"OneVariableDefinedThousandsOfTimes", query("query(" + strings.Repeat("$v:Int ", fit(4)) + "){__typename}"), 200, codeComplexity},
	{"ArgumentsInBulk", query("{__typename(" + repeat(fit(3), func(i int) string { return fmt.Sprintf("a%d:1 ", i) }) + ")}"), 200, codeComplexity},
	{"HugeListLiteral", query(`{user(id:[` + strings.Repeat("1,", fit(1)) + `]){id}}`), 200, codeComplexity},
	{"HugeListAsADefaultValue", query("query($v:[Int]=[" + strings.Repeat("1,", fit(1)) + "]){__typename}"), 200, codeComplexity},
	{"HugeObjectLiteral", query(`mutation{createUser(input:{` + repeat(fit(3), func(i int) string { return fmt.Sprintf("f%d:1 ", i) }) + `}){id}}`), 200, codeComplexity},
	{"ManyOperations", query(repeat(fit(5), func(i int) string { return fmt.Sprintf("query Q%d{__typename} ", i) })), 200, codeComplexity},
	{"TokensOverTheLimit", query("{" + strings.Repeat(" __typename", DefaultLimits.Tokens) + "}"), 200, "GRAPHQL_PARSE_FAILED"},
	{"LongOperationNameParameter", map[string]any{"query": "{__typename}", "operationName": strings.Repeat("A", bodyLimit)}, 200, "GRAPHQL_VALIDATION_FAILED"},
	// Valid, cheap to validate, and each as large as a body may be: these cost what reading that
	// much costs, and are answered, but must not be kept.
	{"LongOperationNameInTheDocument", query("query " + strings.Repeat("A", bodyLimit) + "{__typename}"), 200, ""},
	{"PaddingUpToTheBodyLimit", query("{__typename} #" + strings.Repeat("x", bodyLimit)), 200, ""},
	{"StringLiteralUpToTheBodyLimit", query(`{user(id:"` + strings.Repeat("A", bodyLimit) + `"){id}}`), 200, "UNAUTHENTICATED"},
}

// fit is how many repetitions of perToken tokens each fit in a document under the default token
// limit, with room for a few tokens around them.
func fit(perToken int) int { return (DefaultLimits.Tokens - 20) / perToken }

// Every hostile document is refused before validation by a check that is linear in its size, or
// is cheap to answer: the answer is a small one, and for the documents that are refused it is the
// limit's, not one of validation's findings, which would mean validation ran.
func TestHostileDocumentsAreRefusedBeforeValidation(t *testing.T) {
	url := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits).URL + "/graphql"
	for _, tc := range hostileDocuments {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(tc.body)
			if len(body) > int(DefaultLimits.MaxBodyBytes) {
				t.Fatalf("the document is %d bytes, over the body limit", len(body))
			}
			status, answer := postAnonymously(t, url, body)
			var resp struct {
				Errors []struct {
					Message    string         `json:"message"`
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(answer, &resp); err != nil {
				t.Fatalf("%d, not JSON: %.200s", status, answer)
			}
			code := ""
			if len(resp.Errors) > 0 {
				code, _ = resp.Errors[0].Extensions["code"].(string)
			}
			if status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("got %d %q, want %d %q: %.300s", status, code, tc.wantStatus, tc.wantCode, answer)
			}
			if len(answer) > 4<<10 {
				t.Errorf("the answer is %d bytes", len(answer))
			}
		})
	}
}

// Documents real clients send pass the checks: the Playground's introspection query, and a query
// whose fragments select the same fields again, as components' fragments do.
func TestRealDocumentsPassTheLimits(t *testing.T) {
	url := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits).URL + "/graphql"
	for name, q := range map[string]string{
		"IntrospectionQuery": introspection.Query,
		"OverlappingFragments": `query Page { users(first: 100) { edges { cursor node { ...Card ...Row ...Link } } pageInfo { hasNextPage endCursor } } }
			fragment Card on User { id username email createdAt updatedAt }
			fragment Row on User { id username email }
			fragment Link on User { id username }`,
	} {
		t.Run(name, func(t *testing.T) {
			body, _ := json.Marshal(query(q))
			status, answer := postAnonymously(t, url, body)
			if status != 200 || strings.Contains(string(answer), codeComplexity) || strings.Contains(string(answer), "GRAPHQL_") {
				t.Errorf("got %d %.400s", status, answer)
			}
		})
	}
}

// Unrestricted resource consumption: documents and bodies built to cost the server much more than
// they cost the client, sent with a valid token and no Accept header. Each is refused with a
// small answer, little memory and no write.
func TestResourceLimits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)
		u, own := s.newUser(t)
		request := func(q string) string { return mustJSON(query(q)) }
		aliased := func(n int) string {
			var b strings.Builder
			b.WriteString("mutation {")
			for i := range n {
				fmt.Fprintf(&b, ` u%d: updateUser(id: "%s", input: {username: "alias%d"}) { id }`, i, u.ID, i)
			}
			return request(b.String() + "}")
		}
		cases := []struct {
			name       string
			body       string
			chunked    bool
			wantStatus int
			wantCode   string
		}{
			{"AThousandAliasedMutations", aliased(1000), false, 200, "GRAPHQL_PARSE_FAILED"},
			{"AHundredAliasedMutations", aliased(100), false, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"DeepNesting", request("{" + strings.Repeat("... on Query {", 5000) + " me { id } " + strings.Repeat("}", 5000) + "}"), false, 200, "GRAPHQL_PARSE_FAILED"},
			{"OneFieldRepeated4000Times", request("{ me { " + strings.Repeat("id ", 4000) + "} }"), false, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"OneFieldRepeatedThroughFragments", request("{ me { ...A ...A ...A ...A ...A ...A ...A ...A } } fragment A on User { ...B ...B ...B ...B ...B ...B ...B ...B } fragment B on User { ...C ...C ...C ...C ...C ...C ...C ...C } fragment C on User { id id id id id id id id }"), false, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"FiftyThousandDirectives", request("{ me" + strings.Repeat(" @a", 50000) + " { id } }"), false, 200, "GRAPHQL_PARSE_FAILED"},
			// Counted before validation, which would report each one.
			{"ThousandsOfUnknownDirectives", request("{ me" + strings.Repeat(" @nope", 2000) + " { id } }"), false, 200, "COMPLEXITY_LIMIT_EXCEEDED"},
			{"TenMiBBody", request("{ me { id } }" + strings.Repeat(" ", 10<<20)), false, 413, "PAYLOAD_TOO_LARGE"},
			{"TenMiBChunkedBody", request("{ me { id } }" + strings.Repeat(" ", 10<<20)), true, 413, "PAYLOAD_TOO_LARGE"},
			{"BatchArray", "[" + strings.Repeat(request(`mutation { updateUser(id: "`+u.ID+`", input: {username: "batched"}) { id } }`)+",", 99) + request("{ me { id } }") + "]", false, 400, "BAD_USER_INPUT"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := *dbtest.Stored(t, s.DB, u.ID)
				var body io.Reader = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+own)

				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				runtime.ReadMemStats(&m1)

				var r apitest.GraphQLResponse
				json.Unmarshal(answer, &r)
				if resp.StatusCode != tc.wantStatus || r.Code() != tc.wantCode {
					t.Errorf("got %d %q, want %d %q: %.300s", resp.StatusCode, r.Code(), tc.wantStatus, tc.wantCode, answer)
				}
				if len(answer) > 8<<10 {
					t.Errorf("the answer is %d bytes, %d errors", len(answer), len(r.Errors))
				}
				// Allocation totals do not depend on the machine's speed. The client's copy of
				// a 10 MiB body is counted too; the server reads at most MaxBodyBytes of it.
				if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 64<<20 {
					t.Errorf("%d MiB allocated to refuse it", alloc>>20)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}

// The limits are the operator's to set: introspection off, batches on.
func TestConfigurableLimits(t *testing.T) {
	t.Parallel()
	t.Run("IntrospectionOff", func(t *testing.T) {
		limits := DefaultLimits
		limits.Introspection = false
		s := newTestServer(t, dbtest.SQLiteURL(t), limits)
		_, own := s.newUser(t)
		if r := s.GraphQL(t, own, `{ __schema { types { name } } }`, nil); r.Code() == "" {
			t.Error("introspection answered")
		}
		r := s.GraphQL(t, own, `{ me { usernam } }`, nil)
		if r.Code() != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(r.Errors[0].Message, "Did you mean") {
			t.Errorf("got %q %q", r.Code(), r.Errors[0].Message)
		}
	})
	t.Run("IntrospectionOnByDefault", func(t *testing.T) {
		s := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits)
		_, own := s.newUser(t)
		if r := s.GraphQL(t, own, `{ __schema { types { name } } }`, nil); r.Code() != "" {
			t.Errorf("introspection refused: %+v", r.Errors)
		}
		r := s.GraphQL(t, own, `{ me { usernam } }`, nil)
		if !strings.Contains(r.Errors[0].Message, "Did you mean") {
			t.Errorf("no suggestion: %q", r.Errors[0].Message)
		}
	})
	t.Run("BatchesWhenEnabled", func(t *testing.T) {
		limits := DefaultLimits
		limits.Batch = 2
		s := newTestServer(t, dbtest.SQLiteURL(t), limits)
		u, own := s.newUser(t)
		two := `[{"query": "{ me { id } }"}, {"query": "mutation { updateUser(id: \"` + u.ID + `\", input: {username: \"batched\"}) { username } }"}]`
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(two))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+own)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var answers []apitest.GraphQLResponse
		json.NewDecoder(resp.Body).Decode(&answers)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(answers) != 2 || !strings.Contains(string(answers[0].Data["me"]), u.ID) || !strings.Contains(string(answers[1].Data["updateUser"]), "batched") {
			t.Errorf("got %d %+v", resp.StatusCode, answers)
		}
		three := `[{"query": "{ me { id } }"}, {"query": "{ me { id } }"}, {"query": "{ me { id } }"}]`
		if r := s.PostGraphQL(t, own, []byte(three)); r.Status != 400 || r.Code() != "BAD_USER_INPUT" {
			t.Errorf("a batch over the limit: %d %q", r.Status, r.Code())
		}
	})
}

// No stream of requests, with or without a token, can make the caches keep more than CacheBytes:
// here, valid documents of 48 KiB each, small enough for the document cache to keep, each also
// registered as a persisted query and run under an operation name of its own.
func TestCachesAreBoundedByBytes(t *testing.T) {
	url := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits).URL + "/graphql"
	const requests = 1500
	padding := strings.Repeat("x", 48<<10)
	send := func(i int) {
		q := fmt.Sprintf("query Q%d {__typename} #%d%s", i, i, padding)
		sum := sha256.Sum256([]byte(q))
		body, _ := json.Marshal(map[string]any{
			"query":         q,
			"operationName": fmt.Sprintf("Q%d", i),
			"extensions":    map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}},
		})
		if status, answer := postAnonymously(t, url, body); status != 200 || !strings.Contains(string(answer), `"__typename":"Query"`) {
			t.Fatalf("request %d: %d %.200s", i, status, answer)
		}
	}
	send(0) // the handler's own first allocations are not growth
	before := liveHeap()
	for i := 1; i <= requests; i++ {
		send(i)
	}
	grown := int64(liveHeap()) - int64(before)
	t.Logf("%d requests of %d KiB grew the live heap by %d KiB", requests, len(padding)>>10, grown>>10)
	// Unbounded, the caches would keep the 72 MiB of text these requests sent, and their trees.
	// The caches' weights are estimates, and connections and pools take a little of their own.
	if limit := int64(CacheBytes + 8<<20); grown > limit {
		t.Errorf("the live heap grew by %d MiB, more than the caches' budget of %d MiB and 8 MiB to spare", grown>>20, CacheBytes>>20)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkHostileDocuments sends each hostile document, without a token, to the GraphQL handler
// behind the token check over HTTP, and reports the CPU that one request costs the process (server
// and client: an upper bound of the server's) and the heap it leaves behind. Run it with
//
//	go test -run '^$' -bench HostileDocuments -benchtime 20x ./graph/
func BenchmarkHostileDocuments(b *testing.B) {
	url := newTestServer(b, dbtest.SQLiteURL(b), DefaultLimits).URL + "/graphql"
	for _, tc := range hostileDocuments {
		body, _ := json.Marshal(tc.body)
		b.Run(tc.name, func(b *testing.B) {
			postAnonymously(b, url, body)
			before := liveHeap()
			var cpu time.Duration
			n := 0
			for b.Loop() {
				// Each request is made unique, as an attacker would, so that none is answered
				// from a cache. Making them is not the server's work, and is not counted.
				b.StopTimer()
				batch := make([][]byte, 16)
				for i := range batch {
					batch[i] = uniqueBody(body, n+i)
				}
				b.StartTimer()
				cpu0 := processCPU()
				for _, req := range batch {
					postAnonymously(b, url, req)
				}
				cpu += processCPU() - cpu0
				n += len(batch)
			}
			b.StopTimer()
			grown := int64(liveHeap()) - int64(before)
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/req")
			b.ReportMetric(float64(max(grown, 0))/float64(n), "retained-B/req")
			b.ReportMetric(float64(len(body)), "body-B")
		})
	}
}

// uniqueBody returns body with a comment or a space that makes it differ from every other i.
func uniqueBody(body []byte, i int) []byte {
	var m map[string]any
	json.Unmarshal(body, &m)
	if q, ok := m["query"].(string); ok {
		m["query"] = q + fmt.Sprintf("\n#%d", i)
	}
	out, _ := json.Marshal(m)
	return out
}

// processCPU is the CPU time this process has used, in user and system mode.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FuzzDocumentLimit checks the counts that decide whether a document may reach validation, on
// whatever parses: they end, and stopping early at a bound never changes the verdict, so a
// document is refused exactly when its whole count is over the bound. `go test` replays the seed
// corpus in testdata/fuzz/FuzzDocumentLimit; `go test -fuzz FuzzDocumentLimit -run '^$' ./graph`
// explores further.
func FuzzDocumentLimit(f *testing.F) {
	for _, seed := range []string{
		"{ me { id } }",
		"{__typename} fragment F on Query { __typename __typename }",
		"{...A} fragment A on Query {...B ...B} fragment B on Query {...A __typename}",
		"query($a: [Int] = [1, 2, {b: 3}]) @x { me @include(if: true) { ... on User { id } id } }",
		"{ a: me { id } a: me { id } a: me { ...F } } fragment F on User { id id }",
		introspection.Query,
	} {
		f.Add(seed, uint16(20))
	}
	f.Fuzz(func(t *testing.T, q string, bound uint16) {
		doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: q}, DefaultLimits.Tokens)
		if err != nil {
			return
		}
		const whole = 1 << 20
		limit := int(bound)
		if got, want := countNodes(doc, limit) > limit, countNodes(doc, whole) > limit; got != want {
			t.Errorf("countNodes with limit %d says over: %v; the whole count says %v", limit, got, want)
		}
		if got, want := overlapPairs(doc, limit) > limit, overlapPairs(doc, whole) > limit; got != want {
			t.Errorf("overlapPairs with budget %d says over: %v; the whole count says %v", limit, got, want)
		}
	})
}
