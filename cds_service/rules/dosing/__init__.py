"""Anakinra dosing per NCT02780583: the protocol table, the calculator and the order check."""
