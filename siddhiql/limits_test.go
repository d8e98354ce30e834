package siddhiql

import (
	"fmt"
	"strings"
	"testing"
)

func TestParse_ExpressionSize(t *testing.T) {
	long := "v" + strings.Repeat("+v", 200000)
	_, err := ParseExpr(long)
	checkErr(t, "200000 terms", err, "1:10001", "expression too large (more than 10000 operands and operators)")

	_, err = ParseStoreQuery("from A within 0L, 1L per 'sec' select " + long)
	checkErr(t, "store query", err, "1:10039", "expression too large")

	app := "define stream S (v long);\nfrom S select " + "v" + strings.Repeat("+v", 20000) + " as x insert into O;"
	_, err = Parse(app)
	checkErr(t, "app", err, "2:10015", "expression too large")

	// The budget is per expression: two select items of 6,000 nodes each are fine.
	half := "v" + strings.Repeat("+v", 2999)
	if _, err := Parse("define stream S (v long);\nfrom S select " + half + " as a, " + half + " as b insert into O;"); err != nil {
		t.Fatalf("two expressions under the limit: %v", err)
	}
	// Nodes inside parentheses and call arguments count too.
	nested := "f(" + strings.Repeat("(v+v)+", 3400) + "v)"
	_, err = ParseExpr(nested)
	checkErr(t, "nested", err, "1:12002", "expression too large")
}

// parseChecked parses an app and checks it against the app limits, as a deploy does.
func parseChecked(text string) error {
	app, err := Parse(text)
	if err != nil {
		return err
	}
	return CheckAppLimits(text, app)
}

func TestCheckAppLimits(t *testing.T) {
	big := "define stream S (v long);" + strings.Repeat(" ", MaxAppBytes)
	if _, err := Parse(big); err != nil {
		t.Fatalf("Parse applies no app limit (a deployed app must keep parsing): %v", err)
	}
	err := parseChecked(big)
	checkErr(t, "big app", err, "1:1", fmt.Sprintf("more than the limit of %d", MaxAppBytes))

	var b strings.Builder
	b.WriteString("define stream S (v long);\n")
	for i := 0; i <= MaxQueries; i++ {
		b.WriteString("from S select v insert into O;\n")
	}
	err = parseChecked(b.String())
	checkErr(t, "queries", err, fmt.Sprintf("%d:1", MaxQueries+2), "too many queries: an app holds at most 1000")

	b.Reset()
	for i := 0; i <= MaxDefinitions; i++ {
		fmt.Fprintf(&b, "define stream S%d (v long);\n", i)
	}
	err = parseChecked(b.String())
	checkErr(t, "definitions", err, fmt.Sprintf("%d:1", MaxDefinitions+1), "too many definitions: an app holds at most 1000")
}
