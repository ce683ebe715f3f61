// The SLURM suites share one real cluster, and some of them change it (a node is taken down to simulate a node
// failure): they live in one test file so vitest runs them one after another, never beside each other.
import './executor.suite.js';
import './pipeline.suite.js';
import './retrain.suite.js';
import './exp.suite.js';
import './trust.suite.js';
