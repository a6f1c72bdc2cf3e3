// Package pipeline runs the sensor's stages in order for every event:
//
//	Source.Read → Procs.Handle (ancestry, history) → Enricher.Enrich (container)
//	  → Users.Resolve (user/group names) → OnEvent (trace/record) → rules.Evaluator.Match → alerts → Coalescer → Publish
//
// One goroutine reads and evaluates kernel events, so the borrowed event from
// the source is never copied; container-start events from the enricher are
// evaluated on a second goroutine with their own evaluator. Publish must not
// block (outputs queue or spool). The pipeline also raises internal alerts
// when the source reports lost events.
package pipeline
