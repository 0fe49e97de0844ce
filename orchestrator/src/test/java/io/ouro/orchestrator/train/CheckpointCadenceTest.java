package io.ouro.orchestrator.train;

import io.ouro.orchestrator.config.TrainConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Checkpoints by wall time ({@code train.checkpoint_every_minutes}): the driver cuts the next segment to the steps
 * that fit in what is left of the interval at the measured step time, and ends it with a checkpoint; the planned
 * segment and checkpoint boundaries stay.
 */
class CheckpointCadenceTest {

    static TrainConfig config(String extra) {
        return TrainConfig.parse("cadence.yaml", """
                run: {name: cadence, out: "file:///tmp/cadence-unused"}
                data: {synthetic: {tokens: 1000}}
                train: {workers: 1, segment_steps: 100, checkpoint_every: 1000%s}
                stages:
                  - {name: a, steps: 5000, seq_len: 8, batch_per_worker: 1}
                """.formatted(extra));
    }

    static CheckpointCadence.Segment seg(long first, long last, boolean checkpoint) {
        return new CheckpointCadence.Segment(first, last, checkpoint);
    }

    @Test
    void stepsThatFitTheTimeLeft() {
        assertEquals(30, CheckpointCadence.steps(30 * 60_000, 60_000), "30 minutes at 60 s a step");
        assertEquals(29, CheckpointCadence.steps(30 * 60_000 - 1, 60_000));
        assertEquals(1, CheckpointCadence.steps(10_000, 60_000), "at least one step");
        assertEquals(1, CheckpointCadence.steps(-5_000, 60_000), "even when the interval has passed");
    }

    @Test
    void withoutMinutesTheSegmentsAreThePlannedOnes() {
        TrainConfig cfg = config("");
        CheckpointCadence c = new CheckpointCadence(cfg);
        assertEquals(seg(0, 100, false), c.next(0));
        c.done(c.next(0), 3_600_000); // an hour per segment changes nothing
        assertEquals(seg(900, 1000, true), c.next(900));
        assertEquals(seg(1000, 1100, false), c.next(1000));
    }

    @Test
    void minutesCutTheNextSegmentAndEndItWithACheckpoint() {
        CheckpointCadence c = new CheckpointCadence(config(", checkpoint_every_minutes: 30"));
        // no step time yet: one step measures it
        CheckpointCadence.Segment probe = c.next(0);
        assertEquals(seg(0, 1, false), probe);
        c.done(probe, 90_000); // 90 s (launch included): 28.5 minutes left, 19 steps
        assertEquals(seg(1, 20, true), c.next(1));
        c.done(c.next(1), 19 * 60_000.0); // now 60 s a step, and a checkpoint at step 20
        assertEquals(seg(20, 50, true), c.next(20), "30 minutes at 60 s a step");
        // faster steps: the planned segment of 100 fits, without a checkpoint; the next is cut to what is left
        c.done(c.next(20), 30 * 10_000.0);
        c.done(seg(50, 100, false), 50 * 10_000.0); // 500 s since the checkpoint, 10 s a step
        assertEquals(seg(100, 200, false), c.next(100), "100 steps of 10 s fit the 1300 s left");
        c.done(seg(100, 200, false), 100 * 10_000.0); // 1500 s since the checkpoint: 300 s, 30 steps left
        assertEquals(seg(200, 230, true), c.next(200));
        c.done(seg(200, 230, true), 30 * 10_000.0);
        c.done(seg(230, 300, false), 70 * 10_000.0); // 700 s since the checkpoint: 1100 s, 110 steps left
        c.done(seg(300, 400, false), 100 * 11_000.0); // 1800 s: the interval is over, 11 s a step
        assertEquals(seg(400, 401, true), c.next(400), "at least one step, then a checkpoint");
        c.done(seg(400, 401, true), 18_000); // 18 s a step: 100 steps fill the 30 minutes
        assertEquals(seg(401, 501, true), c.next(401), "a segment that fills the interval ends with a checkpoint");
    }

    @Test
    void plannedBoundariesStayAndARewindRestartsTheInterval() {
        CheckpointCadence c = new CheckpointCadence(config(", checkpoint_every_minutes: 30"));
        c.done(c.next(950), 1_000); // 1 s a step
        assertEquals(seg(951, 1000, true), c.next(951), "the step-count checkpoint comes first");
        c.done(seg(951, 1000, true), 49 * 1_000.0);
        c.done(seg(1000, 1100, false), 100 * 17_000.0); // 1700 s since the checkpoint, 17 s a step
        assertEquals(seg(1100, 1105, true), c.next(1100), "100 s left: 5 steps");
        c.rewind(); // a failure went back to the checkpoint of step 1000
        assertEquals(seg(1000, 1100, false), c.next(1000), "30 minutes from the checkpoint: 105 steps, 100 planned");
    }
}
