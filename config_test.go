package main

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"usergraph/graph"
)

// The variables table is what the README and the compose file are held to; the defaults the code
// applies must be the ones it states. Setting every variable to its stated default must change
// nothing.
func TestDefaultsAreTheDocumentedOnes(t *testing.T) {
	empty, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	stated := map[string]string{}
	for _, v := range variables {
		if v.Default == "" || v.Default == "DB_MAX_OPEN_CONNS" { // no default, or one named by another
			continue
		}
		stated[v.Name] = v.Default
	}
	explicit, err := loadConfig(func(k string) string { return stated[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(empty, explicit) {
		t.Errorf("the defaults differ from the table:\n applied %+v\n  stated %+v", empty, explicit)
	}
	if empty.GraphQL != graph.DefaultLimits {
		t.Errorf("GraphQL limits %+v, want graph.DefaultLimits %+v", empty.GraphQL, graph.DefaultLimits)
	}
	if n, _ := strconv.Atoi(stated["DB_MAX_OPEN_CONNS"]); empty.Database.MaxIdleConns != n {
		t.Errorf("DB_MAX_IDLE_CONNS defaults to %d, want DB_MAX_OPEN_CONNS (%d)", empty.Database.MaxIdleConns, n)
	}
	if empty.RequestTimeout != 10*time.Second || empty.ConnectTimeout != 30*time.Second {
		t.Errorf("timeouts %s, %s", empty.RequestTimeout, empty.ConnectTimeout)
	}
}
