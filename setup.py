"Packaging for mobileml-book: everything is read from settings.ini (the nbdev 2 way)."
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
lic = licenses[cfg['license']]
requirements = shlex.split(cfg.get('requirements', ''))

setuptools.setup(
    name=cfg['repo'], version=cfg['version'], license=lic[0],
    description=cfg['description'], long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown', author=cfg['author'], author_email=cfg['author_email'],
    url=cfg['git_url'], keywords=cfg['keywords'].split(),
    classifiers=['Development Status :: 3 - Alpha', 'Intended Audience :: Developers', 'Natural Language :: English',
                 'License :: ' + lic[1], 'Programming Language :: Python :: 3.11'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True, install_requires=requirements, python_requires='>=' + cfg['min_python'],
    zip_safe=False,
    entry_points={'console_scripts': cfg['console_scripts'].split(), 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
