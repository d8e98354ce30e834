package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// BenchmarkTableUpsertJoin: one event upserts a counter row keyed by user and joins a
// length(1) window to the table, over 10,000 distinct users (the API-M IP-access shape).
func BenchmarkTableUpsertJoin(b *testing.B) {
	for _, keyed := range []bool{true, false} {
		b.Run(fmt.Sprintf("primaryKey=%t", keyed), func(b *testing.B) {
			app := `@app:name('B')
define stream Req (user string, ip string);
@PrimaryKey('user', 'ip')
define table Counts (user string, ip string, n long);
from Req select user, ip, 1L as n update or insert into Counts set Counts.n = Counts.n + n on Counts.user == user and Counts.ip == ip;
from Req#window.length(1) as R join Counts as T on R.user == T.user and R.ip == T.ip select R.user, T.n insert into Out;
`
			if !keyed {
				app = strings.Replace(app, "@PrimaryKey('user', 'ip')", "", 1)
			}
			e, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Deploy(app); err != nil {
				b.Fatal(err)
			}
			rows := make([]expr.Row, 10000)
			for i := range rows {
				rows[i] = expr.Row{expr.String(fmt.Sprintf("user%d", i)), expr.String("10.0.0.1")}
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := e.Apply(uint64(i+1), int64(i), "Req", rows[i%len(rows):i%len(rows)+1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
