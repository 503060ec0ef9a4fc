"""The compiled part of caffemem: the log scanner and writer in C (caffemem/logparse/_cscan.c).

All project metadata lives in setup.cfg; this file only declares the extension.  It is
optional: where no C compiler is at hand, ``pip install`` still installs caffemem, whose
numpy scanner and writers then do the same work (more slowly).  For a checkout used in
place, ``python setup.py build_ext --inplace`` builds it next to the sources.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("caffemem.logparse._cscan", ["caffemem/logparse/_cscan.c"], optional=True)])
