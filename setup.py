"""Installs mic-tf. Metadata and pins live in setup.cfg."""
import setuptools

setuptools.setup()
