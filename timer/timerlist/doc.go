// Package timerlist runs timers on lcores, as DPDK's rte_timer does: a
// timer is armed (Reset) to expire once or periodically on a chosen lcore,
// can be re-armed or stopped from any lcore of any process of the group,
// and runs when its lcore's poll loop calls Manage.
//
// # Objects and their lives
//
// Lists is one process's view of a group's timers, which live in one
// memzone (Config.Name, default "timerlist"): a fixed pool of timer records
// and one skiplist per lcore of the pending timers ordered by expiry. Open
// creates the memzone or attaches to it. Everything in it is plain data:
// expiry times, periods, callback IDs, state words and record indices.
//
// A Timer is a handle on one record (index and generation); it is plain
// data, so a process may pass it to another through shared memory. New
// takes a record, Free returns it, after which the handle is stale and every
// operation on it fails with ErrStale. A timer belongs to the process that
// created it: when that process dies, Reap (which Open also runs) stops and
// frees its timers.
//
// Callbacks cannot be shared between processes, so each process registers
// its own functions under CallbackIDs, and a timer names its callback by ID.
// Manage runs an expired timer with the callback its own process registered
// for that ID. A timer whose ID is unregistered in the managing process is
// stopped and logged.
//
// # Lcores and states
//
// Operations take the caller's lcore as an *Lcore (from Lists.Lcore; use
// AnyLcore on threads that are not lcores). A timer is Stopped, Pending on
// one lcore's list, Running (its callback is executing on that lcore), or
// Configuring (someone is changing it). Changes go through a state word with
// compare-and-swap, as in rte_timer: Reset and Stop of a Running timer fail
// with ErrBusy unless they come from its own callback (the same lcore), so
// after StopSync returns the callback has finished and will not run again.
// ResetSync and StopSync retry until the timer is free to change.
//
// # Time
//
// Times are nanoseconds on the group's timeline, clock.Clock.Nanos, which
// every process shares whatever its clock (TSC or HPET); durations are
// time.Duration. A periodic timer is re-armed at its previous expiry plus
// the period, not at the time it ran, so it does not drift; when Manage runs
// late the missed periods run one per Manage call.
//
// Manage with nothing expired reads the clock and one shared word: no lock,
// no allocation. The lists themselves are guarded by a spinlock per lcore
// naming its holder by pid and start time, taken over if the holder dies
// (a pid reused by another process since included); links are changed
// in an order that leaves a skiplist valid at every step, so a process dying
// inside a change leaves the list usable.
package timerlist
