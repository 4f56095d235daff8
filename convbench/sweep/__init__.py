"""A sweep: plan the cases, measure them (in an isolated worker), write a results folder."""
