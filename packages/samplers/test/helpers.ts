// The oracle tests' yardsticks live in @sbm/samplers/testing (the conformance suite uses the same ones).
export { swd, floorOf, meanSwd, momentErrors } from '@sbm/samplers/testing';
