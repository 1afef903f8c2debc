//go:build long

package history

import "testing"

// TestHistoryLong is the large history: 64 clients × 5000 operations over
// 8 datasets, with the server killed (SIGKILL) 20 times. Size it with
// -args -clients N -ops N -kills N -seed N.
//
//	go test -tags long -run TestHistoryLong -timeout 90m ./e2e/history/ -args -clients 64 -ops 5000
func TestHistoryLong(t *testing.T) {
	runHistory(t, config{
		Clients: orFlag(*flagClients, 1, 64), Ops: orFlag(*flagOps, 1, 5000), Seed: *flagSeed, Kills: orFlag(*flagKills, 0, 20),
		Datasets: 8, Recipes: 3, ReadBack: 200,
	})
}
